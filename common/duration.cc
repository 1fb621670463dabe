#include "common/duration.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vigil {
namespace {

constexpr size_t kMaxQuoted = 64;

absl::Status Bad(absl::string_view what, absl::string_view text, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(what, " ", QuoteValue(text), ": expected ", want));
}

}  // namespace

std::string QuoteValue(absl::string_view text) {
  // Cut what is printed, not what was given: a byte escaped as \xNN is four
  // characters, and a line of them must stay as short as one of letters.
  std::string out;
  size_t i = 0;
  for (; i < text.size(); ++i) {
    const std::string e = absl::CHexEscape(text.substr(i, 1));
    if (out.size() + e.size() > kMaxQuoted) break;
    out += e;
  }
  return absl::StrCat("\"", out, i < text.size() ? "...\"" : "\"");
}

absl::StatusOr<absl::Duration> ParseBoundedDuration(absl::string_view text, absl::Duration min,
                                                    absl::Duration max, absl::string_view what) {
  // "positive" says more than "at least 1ns".
  std::string like = "a non-negative duration like 1s, 500ms, 10m";
  if (min > absl::Nanoseconds(1)) {
    like = absl::StrCat("a duration of at least ", absl::FormatDuration(min), " like 1s, 10m");
  } else if (min > absl::ZeroDuration()) {
    like = "a positive duration like 1s, 500ms, 10m";
  }
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) return Bad(what, text, like);
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return Bad(what, text, absl::StrCat("a finite duration, at most ", absl::FormatDuration(max)));
  }
  if (d < min) return Bad(what, text, like);
  if (d > max)
    return Bad(what, text, absl::StrCat("a duration of at most ", absl::FormatDuration(max)));
  return d;
}

}  // namespace vigil
