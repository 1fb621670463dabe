#include "common/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace vigil {

bool ReadFileBounded(const std::string& path, size_t max_bytes, std::string* out, bool* truncated) {
  out->clear();
  if (truncated != nullptr) *truncated = false;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  // procfs hands out at most a page per read: loop until EOF or the bound,
  // then one byte more to learn whether the bound cut the file. The buffer
  // grows as data comes (doubling from 16 KiB): the bound is for the rare
  // huge file, and zeroing it up front cost each small read milliseconds.
  const size_t limit = max_bytes + 1;
  size_t got = 0;
  out->resize(std::min<size_t>(limit, 16384));
  for (;;) {
    if (got == out->size()) {
      if (got == limit) break;
      out->resize(std::min(limit, got * 2));
    }
    const ssize_t n = read(fd.get(), out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out->clear();
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) {
    got = max_bytes;
    if (truncated != nullptr) *truncated = true;
  }
  out->resize(got);
  return true;
}

void DropPartialLine(std::string* text) {
  const size_t nl = text->rfind('\n');
  text->resize(nl == std::string::npos ? 0 : nl + 1);
}

absl::StatusOr<std::string> ReadFlagFile(const std::string& path, const char* flag) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace vigil
