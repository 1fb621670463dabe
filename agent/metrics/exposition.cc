#include "agent/metrics/exposition.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/safe_text.h"

namespace vigil {

std::string EscapeLabelValue(absl::string_view raw) {
  // Prometheus requires valid UTF-8 label values; names come from other
  // users. Newlines keep the format's own \n escape; other controls and
  // invalid bytes become SafeText's \xNN (written with an escaped backslash).
  std::string safe;
  bool first = true;
  for (absl::string_view part : absl::StrSplit(raw, '\n')) {
    if (!first) safe += '\n';
    first = false;
    safe += SafeText(part);
  }
  const absl::string_view v = safe;
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void Exposition::Family(absl::string_view name, absl::string_view type, absl::string_view help) {
  absl::StrAppend(&text_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  family_ = std::string(name);
}

void Exposition::Sample(absl::string_view name, const Labels& labels, double value) {
  absl::StrAppend(&text_, name);
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      absl::StrAppend(&text_, i ? "," : "", labels[i].first, "=\"",
                      EscapeLabelValue(labels[i].second), "\"");
    }
    text_ += '}';
  }
  // Integers print exactly (counters of calls); others with full precision.
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    absl::StrAppend(&text_, " ", absl::StrFormat("%.0f", value), "\n");
  } else {
    absl::StrAppend(&text_, " ", absl::StrFormat("%.9g", value), "\n");
  }
}

}  // namespace vigil
