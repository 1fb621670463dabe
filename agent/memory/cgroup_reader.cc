#include "agent/memory/cgroup_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/read_file.h"

namespace vigil {
namespace {

constexpr int kMaxDepth = 32;
// A walk runs when an id never seen before shows up (a cgroup created since
// the last walk), at most this often; an id the walk did not find (outside
// this mount namespace's view) is not looked for again for a while.
constexpr absl::Duration kRewalkEvery = absl::Milliseconds(200);
constexpr absl::Duration kUnknownFor = absl::Seconds(10);

// A small cgroupfs file's first line, bounded.
absl::StatusOr<std::string> ReadSmall(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  char buf[64];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n < 0) return absl::UnavailableError(absl::StrCat(path, ": ", strerror(errno)));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))));
}

absl::StatusOr<uint64_t> ReadBytes(const std::string& path) {
  absl::StatusOr<std::string> s = ReadSmall(path);
  if (!s.ok()) return s.status();
  const std::optional<uint64_t> v = ParseCgroupBytes(*s);
  if (!v) return absl::DataLossError(absl::StrCat(path, ": not a number"));
  return *v;
}

}  // namespace

std::optional<uint64_t> ParseCgroupBytes(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text == "max") return 0;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) return std::nullopt;
  return v;
}

MemoryMounts ParseMemoryMounts(absl::string_view mountinfo) {
  MemoryMounts m;
  int i = 0;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    if (i++ >= 100000) break;
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS"
    const size_t dash = line.find(" - ");
    if (dash == absl::string_view::npos) continue;
    std::vector<absl::string_view> pre = absl::StrSplit(line.substr(0, dash), ' ');
    std::vector<absl::string_view> post = absl::StrSplit(line.substr(dash + 3), ' ');
    if (pre.size() < 5 || post.size() < 3 || pre[3] != "/") continue;
    if (post[0] == "cgroup2" && m.v2.empty()) m.v2 = std::string(pre[4]);
    if (post[0] == "cgroup") {
      for (absl::string_view opt : absl::StrSplit(post[2], ',')) {
        if (opt == "memory") m.v1 = std::string(pre[4]);
      }
    }
  }
  return m;
}

absl::StatusOr<CgroupReader> CgroupReader::Open(uint32_t max_dirs, const std::string& mountinfo) {
  // Container hosts can have tens of thousands of mounts; the parse looks at
  // 100000 lines at most, and this bounds what is read for it.
  std::string text;
  bool cut = false;
  if (!ReadFileBounded(mountinfo, 32 << 20, &text, &cut)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", mountinfo));
  }
  if (cut) DropPartialLine(&text);
  const MemoryMounts mounts = ParseMemoryMounts(text);
  const std::string& v1_mount = mounts.v1;
  const std::string& v2_mount = mounts.v2;
  // On a hybrid host the memory controller sits on v1; cgroup2 there holds
  // no controllers. A v2 mount counts only if it offers "memory".
  if (!v1_mount.empty()) return CgroupReader(v1_mount, false, max_dirs);
  if (!v2_mount.empty()) {
    absl::StatusOr<std::string> controllers = ReadSmall(v2_mount + "/cgroup.controllers");
    if (controllers.ok() && absl::StrContains(*controllers, "memory")) {
      return CgroupReader(v2_mount, true, max_dirs);
    }
  }
  return absl::NotFoundError("no cgroup mount with the memory controller");
}

void CgroupReader::Walk() {
  paths_.clear();
  dirs_over_cap_ = 0;
  uint32_t dirs = 0;
  std::vector<std::pair<std::string, int>> pending = {{"", 0}};  // relative path, depth
  while (!pending.empty()) {
    auto [rel, depth] = std::move(pending.back());
    pending.pop_back();
    const std::string full = mount_ + rel;
    struct stat st;
    if (lstat(full.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (dirs >= max_dirs_) {
      ++dirs_over_cap_;
      continue;
    }
    ++dirs;
    paths_[st.st_ino] = rel.empty() ? "/" : rel;
    if (depth >= kMaxDepth) continue;
    DIR* d = opendir(full.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      pending.emplace_back(absl::StrCat(rel, "/", e->d_name), depth + 1);
    }
    closedir(d);
  }
}

std::string CgroupReader::Path(uint64_t id, absl::Time now) {
  auto it = paths_.find(id);
  if (it != paths_.end()) return it->second;
  if (auto u = unknown_.find(id); u != unknown_.end() && now - u->second < kUnknownFor) return "";
  if (now - last_walk_ < kRewalkEvery) return "";
  last_walk_ = now;
  Walk();
  it = paths_.find(id);
  if (it != paths_.end()) return it->second;
  if (unknown_.size() >= max_dirs_) unknown_.clear();
  unknown_[id] = now;
  return "";
}

absl::StatusOr<CgroupUsage> CgroupReader::Read(const std::string& path) const {
  const std::string dir = mount_ + (path == "/" ? "" : path);
  CgroupUsage u;
  if (v2_) {
    // The root has no memory.current before 5.x; its usage is the host's.
    absl::StatusOr<uint64_t> cur = ReadBytes(dir + "/memory.current");
    if (!cur.ok()) return cur.status();
    u.usage_bytes = *cur;
    if (absl::StatusOr<uint64_t> max = ReadBytes(dir + "/memory.max"); max.ok()) {
      u.limit_bytes = *max;
    }
    if (absl::StatusOr<uint64_t> swap = ReadBytes(dir + "/memory.swap.current"); swap.ok()) {
      u.swap_bytes = *swap;
    }
    return u;
  }
  absl::StatusOr<uint64_t> cur = ReadBytes(dir + "/memory.usage_in_bytes");
  if (!cur.ok()) return cur.status();
  u.usage_bytes = *cur;
  if (absl::StatusOr<uint64_t> max = ReadBytes(dir + "/memory.limit_in_bytes"); max.ok()) {
    // v1 writes "no limit" as PAGE_COUNTER_MAX pages: anything past 2^62.
    u.limit_bytes = *max >= (uint64_t{1} << 62) ? 0 : *max;
  }
  return u;
}

}  // namespace vigil
