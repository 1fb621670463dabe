// Prometheus text exposition format (version 0.0.4): families with HELP and
// TYPE, then their samples. Pure string building, unit-tested.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace vigil {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  // Starts a family; samples follow until the next Family().
  void Family(absl::string_view name, absl::string_view type, absl::string_view help);
  void Sample(absl::string_view name, const Labels& labels, double value);
  void Sample(absl::string_view name, double value) { Sample(name, {}, value); }
  // Appends already-rendered exposition text (whole families).
  void Raw(absl::string_view text) { text_.append(text.data(), text.size()); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabelValue(absl::string_view v);

}  // namespace vigil
