// Flag declarations shared by the commands, on top of CLI11: each parses its
// value and rejects a bad one with the one-line message the runner prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "vigil/v1/vigil.pb.h"

namespace CLI {
class App;
}  // namespace CLI

namespace vigil::cli {

// Throws CLI::ValidationError with `NAME "VALUE": expected WANT`.
[[noreturn]] void BadValue(const std::string& name, const std::string& value,
                           const std::string& want);

// --NAME N with N in [min, max]; `want` completes "expected ...".
void AddCount(CLI::App& app, const std::string& name, uint32_t* out, uint32_t min, uint32_t max,
              const std::string& want, const std::string& help);
// --NAME DURATION in [min, max].
void AddDuration(CLI::App& app, const std::string& name, absl::Duration* out, absl::Duration min,
                 absl::Duration max, const std::string& help);
// --NAME REGEX, checked to compile as RE2.
void AddRegex(CLI::App& app, const std::string& name, std::string* out, const std::string& help);
// --NAME WORD, one of `choices`; `set` receives the chosen one's index.
void AddChoice(CLI::App& app, const std::string& name, std::vector<std::string> choices,
               std::function<void(size_t)> set, const std::string& want, const std::string& help);
// --NAME WORD, one of the words in `choices`; *out gets its value.
template <typename T>
void AddEnum(CLI::App& app, const std::string& name, std::vector<std::pair<std::string, T>> choices,
             T* out, const std::string& want, const std::string& help) {
  std::vector<std::string> words;
  for (const auto& c : choices) words.push_back(c.first);
  AddChoice(
      app, name, std::move(words), [out, choices](size_t i) { *out = choices[i].second; }, want,
      help);
}
// --NAME VALUE stored as given (non-empty).
void AddText(CLI::App& app, const std::string& names, std::string* out,
             const std::string& value_name, const std::string& help);
void AddSwitch(CLI::App& app, const std::string& name, bool* out, const std::string& help);

// Flags shared by `vigil hot`, `vigil profile` and `vigil flamegraph`: which
// samples (CPU time or page faults), which threads, which frames, which time
// range.
struct ProfileFilter {
  v1::ProfileKind kind = v1::PROFILE_KIND_CPU;
  uint32_t pid = 0, tid = 0;
  std::string comm_regex;
  absl::Duration since = absl::ZeroDuration(), until = absl::ZeroDuration();
  bool user_only = false, kernel_only = false;
};
void AddProfileFilter(CLI::App& app, ProfileFilter* f);

// --since: the range starts that long ago, within a month.
void AddSince(CLI::App& app, absl::Duration* since);
// --top N, N in [1, 10000]; `help` says what is counted and the default.
void AddTop(CLI::App& app, uint32_t* top, const std::string& help);
// --since/--until: that long ago, within a month.
void AddRange(CLI::App& app, absl::Duration* since, absl::Duration* until);
// "" when since/until make a range, else what is wrong.
std::string CheckRange(absl::Duration since, absl::Duration until);

// "" when the filter's flags agree, else what is wrong.
std::string CheckProfileFilter(const ProfileFilter& f);

template <typename Req>
void ApplyProfileFilter(const ProfileFilter& f, Req* req) {
  req->set_kind(f.kind);
  req->set_pid(f.pid);
  req->set_tid(f.tid);
  req->set_comm_regex(f.comm_regex);
  req->set_frames(f.user_only     ? v1::FRAME_FILTER_USER
                  : f.kernel_only ? v1::FRAME_FILTER_KERNEL
                                  : v1::FRAME_FILTER_ALL);
  req->mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(f.since));
  req->mutable_range()->set_until_ago_ns(absl::ToInt64Nanoseconds(f.until));
}

}  // namespace vigil::cli
