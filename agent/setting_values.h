// Value parsers shared by vigild's settings (agent/settings.cc) and the
// capabilities that keep their keys beside their code (agent/spin). Values
// come from a hand-edited file or a flag (which may hold newlines): errors
// quote them escaped and cut, so what vigild prints stays one short line.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil::setting {

// INVALID_ARGUMENT `KEY "VALUE": expected WANT`.
absl::Status Bad(absl::string_view key, absl::string_view value, absl::string_view want);
// A duration in (0, one year]: no overflow in later arithmetic.
absl::Status Duration(absl::string_view key, absl::string_view value, absl::Duration* out);
// A duration in [min, max], or with zero_off also "0" (no unit needed):
// the setting's off switch. The error names the range, e.g. `0 (off) or a
// duration from 1s to 1h, like 1m`.
absl::Status DurationIn(absl::string_view key, absl::string_view value, absl::Duration min,
                        absl::Duration max, absl::string_view like, bool zero_off,
                        absl::Duration* out);
// An RE2 pattern, compiled with the agent's bound on patterns.
absl::Status Regex(absl::string_view key, absl::string_view value, std::string* out);

}  // namespace vigil::setting
