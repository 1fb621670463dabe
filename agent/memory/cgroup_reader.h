// Names memory cgroups by kernel id and reads their usage and limit from
// cgroupfs. The BPF side reports each process's memory-controller cgroup
// as its kernfs id, which is the inode number of its directory; this walks
// the controller's mount (cgroup v2, or v1's "memory" hierarchy on hybrid
// hosts) to map ids to paths, again only when an unknown id shows up.
//
// cgroupfs is written by whoever runs containers: the walk is bounded in
// directories and depth, and paths are kept as bytes (escaped on output).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil {

struct CgroupUsage {
  uint64_t usage_bytes = 0;
  uint64_t limit_bytes = 0;  // 0: unlimited
  uint64_t swap_bytes = 0;
};

// Where the memory controller is mounted, from mountinfo text ("" if
// absent): v1's "memory" hierarchy and the first cgroup2 mount. Pure, for
// tests and tests/fuzz/proc_fuzz.
struct MemoryMounts {
  std::string v1, v2;
};
MemoryMounts ParseMemoryMounts(absl::string_view mountinfo);

// A cgroupfs counter or limit file's text: bytes, or 0 for "max"
// (unlimited); nullopt if it is neither.
std::optional<uint64_t> ParseCgroupBytes(absl::string_view text);

class CgroupReader {
 public:
  // Finds the memory controller's mount in mountinfo; NOT_FOUND if the
  // kernel has none (then every cgroup is unnamed).
  static absl::StatusOr<CgroupReader> Open(uint32_t max_dirs,
                                           const std::string& mountinfo = "/proc/self/mountinfo");

  // The path ("/" or "/system.slice/x.service") of cgroup `id`, walking the
  // hierarchy again if it is unknown (at most once per `rewalk_every`);
  // empty if not found.
  std::string Path(uint64_t id, absl::Time now);
  // Usage and limit of the cgroup at `path`.
  absl::StatusOr<CgroupUsage> Read(const std::string& path) const;

  bool v2() const { return v2_; }
  const std::string& mount() const { return mount_; }
  // Directories not walked because of max_dirs, in the last walk.
  uint64_t dirs_over_cap() const { return dirs_over_cap_; }

 private:
  CgroupReader(std::string mount, bool v2, uint32_t max_dirs)
      : mount_(std::move(mount)), v2_(v2), max_dirs_(max_dirs) {}
  void Walk();

  std::string mount_;
  bool v2_ = true;
  uint32_t max_dirs_;
  absl::flat_hash_map<uint64_t, std::string> paths_;
  absl::flat_hash_map<uint64_t, absl::Time> unknown_;  // id -> when last looked for
  absl::Time last_walk_ = absl::InfinitePast();
  uint64_t dirs_over_cap_ = 0;
};

}  // namespace vigil
