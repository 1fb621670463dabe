#include "agent/profile/proc_maps.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace vigil {

std::vector<FileMapping> ParseFileMappings(absl::string_view text) {
  std::vector<FileMapping> maps;
  for (absl::string_view view : absl::StrSplit(text, '\n')) {
    const std::string line(view);
    // start-end perms offset dev:dev inode path
    unsigned long long start, end, off, ino;
    unsigned dmaj, dmin;
    char perms[8] = {};  // "%7s" of a 1-char field leaves perms[2] unset
    int pos = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &dmaj,
               &dmin, &ino, &pos) < 7) {
      continue;
    }
    if (perms[2] != 'x') continue;
    std::string name = pos > 0 && static_cast<size_t>(pos) <= line.size() ? line.substr(pos) : "";
    if (name.empty()) continue;  // anonymous: JIT code, see the perf map
    maps.push_back({start, end, off, (static_cast<uint64_t>(dmaj) << 32) | dmin, ino, name});
  }
  return maps;
}

std::optional<uint64_t> ParseStatStartTime(absl::string_view text) {
  // The whole text, not its first line: a name may hold '\n' (prctl takes
  // any byte but NUL). Fields resume after the name's last ')', and a stat
  // cut right after it must not read past the end (substr(close + 2) threw
  // std::out_of_range: found by tests/fuzz/proc_fuzz).
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) return std::nullopt;
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(close + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  // fields[0] is field 3 (the state); starttime is field 22.
  constexpr size_t kStartTime = 22 - 3;
  uint64_t start_time = 0;
  if (fields.size() <= kStartTime || !absl::SimpleAtoi(fields[kStartTime], &start_time)) {
    return std::nullopt;
  }
  return start_time;
}

}  // namespace vigil
