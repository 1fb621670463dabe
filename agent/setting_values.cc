#include "agent/setting_values.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/regex.h"

namespace vigil::setting {

absl::Status Bad(absl::string_view key, absl::string_view value, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(key, " ", QuoteValue(value), ": expected ", want));
}

absl::Status Duration(absl::string_view key, absl::string_view value, absl::Duration* out) {
  absl::StatusOr<absl::Duration> d =
      ParseBoundedDuration(value, absl::Nanoseconds(1), absl::Hours(24 * 365), key);
  if (!d.ok()) return d.status();
  *out = *d;
  return absl::OkStatus();
}

absl::Status DurationIn(absl::string_view key, absl::string_view value, absl::Duration min,
                        absl::Duration max, absl::string_view like, bool zero_off,
                        absl::Duration* out) {
  if (zero_off && value == "0") {
    *out = absl::ZeroDuration();
    return absl::OkStatus();
  }
  absl::Duration d;
  if (!Duration(key, value, &d).ok() || d < min || d > max) {
    return Bad(
        key, value,
        absl::StrCat(zero_off ? "0 (off) or " : "", "a duration from ", absl::FormatDuration(min),
                     " to ", absl::FormatDuration(max), ", like ", like));
  }
  *out = d;
  return absl::OkStatus();
}

absl::Status Regex(absl::string_view key, absl::string_view value, std::string* out) {
  absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(std::string(value), key);
  if (!re.ok()) return re.status();
  *out = std::string(value);
  return absl::OkStatus();
}

}  // namespace vigil::setting
