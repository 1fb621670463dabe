#include "common/regex.h"

#include "absl/strings/str_cat.h"
#include "common/duration.h"

namespace vigil {

absl::StatusOr<std::unique_ptr<RE2>> CompilePattern(const std::string& pattern,
                                                    absl::string_view what) {
  if (pattern.size() > kMaxPatternBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", QuoteValue(pattern), ": ",
                                                   pattern.size(), " bytes, at most ",
                                                   kMaxPatternBytes));
  }
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, opts);
  if (!re->ok()) {
    // RE2's error quotes the offending part of the pattern: bound it too.
    return absl::InvalidArgumentError(absl::StrCat(what, " ", QuoteValue(pattern),
                                                   " does not compile: ", QuoteValue(re->error())));
  }
  return re;
}

}  // namespace vigil
