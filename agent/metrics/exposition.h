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
  // A sample of the family last started, under its name.
  void Sample(const Labels& labels, double value) { Sample(family_, labels, value); }
  // A sample under a name of its own: a histogram's _bucket, _sum, _count.
  void Sample(absl::string_view name, const Labels& labels, double value);
  // A family of one unlabelled sample.
  void Counter(absl::string_view name, absl::string_view help, double value) {
    Single(name, "counter", help, value);
  }
  void Gauge(absl::string_view name, absl::string_view help, double value) {
    Single(name, "gauge", help, value);
  }
  // Appends already-rendered exposition text (whole families).
  void Raw(absl::string_view text) { text_.append(text.data(), text.size()); }
  const std::string& text() const { return text_; }

 private:
  void Single(absl::string_view name, absl::string_view type, absl::string_view help,
              double value) {
    Family(name, type, help);
    Sample({}, value);
  }

  std::string text_;
  std::string family_;  // the name of the family last started
};

// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabelValue(absl::string_view v);

}  // namespace vigil
