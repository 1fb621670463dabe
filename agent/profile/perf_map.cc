#include "agent/profile/perf_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

bool Hex(absl::string_view s, uint64_t* out) {
  absl::ConsumePrefix(&s, "0x");
  if (s.empty() || s.size() > 16) return false;
  return absl::SimpleHexAtoi(s, out);
}

}  // namespace

std::vector<PerfMapSymbol> ParsePerfMap(absl::string_view text, const PerfMapLimits& limits) {
  std::vector<PerfMapSymbol> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (out.size() >= limits.max_symbols) break;
    line = absl::StripLeadingAsciiWhitespace(line);
    const size_t a = line.find(' ');
    if (a == absl::string_view::npos) continue;
    const size_t b = line.find(' ', a + 1);
    if (b == absl::string_view::npos) continue;
    PerfMapSymbol s;
    if (!Hex(line.substr(0, a), &s.start) || !Hex(line.substr(a + 1, b - a - 1), &s.size)) {
      continue;
    }
    if (s.size == 0 || s.start + s.size < s.start) continue;  // empty, or wraps around
    absl::string_view name = absl::StripTrailingAsciiWhitespace(line.substr(b + 1));
    if (name.empty()) continue;
    s.name = std::string(name.substr(0, limits.max_name));
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const PerfMapSymbol& x, const PerfMapSymbol& y) { return x.start < y.start; });
  return out;
}

bool ReadPerfMapFile(const std::string& path, size_t max_bytes, std::string* out) {
  // O_NONBLOCK: a FIFO planted at the path must not hang the agent's open.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) return false;
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out->clear();
  out->resize(std::min<uint64_t>(static_cast<uint64_t>(st.st_size), max_bytes));
  size_t got = 0;
  while (got < out->size()) {
    const ssize_t n =
        pread(fd.get(), out->data() + got, out->size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // truncated under us: what was read stands
    got += static_cast<size_t>(n);
  }
  out->resize(got);
  return true;
}

}  // namespace vigil
