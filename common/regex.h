// RE2 patterns that other users (gRPC clients, config files) give the agent:
// compiled with a bound, and never echoed whole into an error.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "re2/re2.h"

namespace vigil {

// Patterns longer than this are refused before RE2 sees them.
inline constexpr size_t kMaxPatternBytes = 4096;

// The compiled pattern, or INVALID_ARGUMENT naming `what` with the pattern
// and RE2's complaint each quoted, escaped and cut to ~64 characters.
absl::StatusOr<std::unique_ptr<RE2>> CompilePattern(const std::string& pattern,
                                                    absl::string_view what);

}  // namespace vigil
