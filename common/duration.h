// Duration flags and settings, shared by vigild and vigil: one parser with
// bounds, so "inf" or "9999999h" cannot overflow a deadline downstream.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil {

// Parses `text` (absl syntax: "1s", "500ms", "1h30m") and checks it lies in
// [min, max]. Rejects garbage, inf/-inf and anything out of range with an
// INVALID_ARGUMENT one-liner: `what "text": expected ...`. (absl::string_view:
// Debian's Abseil does not alias std::string_view.)
absl::StatusOr<absl::Duration> ParseBoundedDuration(absl::string_view text, absl::Duration min,
                                                    absl::Duration max, absl::string_view what);

// `text` as error messages quote it: escaped to one line, at most ~64 chars.
std::string QuoteValue(absl::string_view text);

}  // namespace vigil
