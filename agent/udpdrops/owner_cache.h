// Socket inode -> the processes holding it, from /proc/*/fd.
//
// Packets are dropped in softirq context, where "the current process" is
// whoever was interrupted; the socket's holders are the honest owner. The
// kernel side records the socket's inode; once per interval the collector
// asks this cache for the inodes it saw, and /proc is scanned at most once,
// only when an inode is new or its entry is older than the refresh period.
// Bounded: at most max_entries inodes (entries unused for a refresh period
// are evicted first; what still does not fit is counted, not cached) and at
// most kMaxOwnersPerSocket owners each.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil {

struct SocketOwnerInfo {
  uint32_t pid = 0;
  std::string comm;
  bool operator==(const SocketOwnerInfo& o) const { return pid == o.pid && comm == o.comm; }
};

inline constexpr size_t kMaxOwnersPerSocket = 8;

using OwnerMap = absl::flat_hash_map<uint64_t, std::vector<SocketOwnerInfo>>;

// Finds the holders of `wanted` socket inodes; inodes nobody holds are left
// out. Owners sorted by pid, at most kMaxOwnersPerSocket each.
using SocketScanner = std::function<OwnerMap(const absl::flat_hash_set<uint64_t>& wanted)>;

// The inode of a /proc/PID/fd link's target if it is a socket
// ("socket:[12345]"), else nullopt. Pure, for tests and tests/fuzz.
std::optional<uint64_t> ParseSocketInode(absl::string_view link);

// The real scanner: walks proc_root/[pid]/fd (default /proc).
OwnerMap ScanProcForSockets(const absl::flat_hash_set<uint64_t>& wanted,
                            const std::string& proc_root = "/proc");

class OwnerCache {
 public:
  OwnerCache(size_t max_entries, absl::Duration refresh, SocketScanner scanner);

  // Owners of each inode (empty vector: nobody held it at the last look).
  OwnerMap Resolve(const absl::flat_hash_set<uint64_t>& inodes, absl::Time now);

  size_t size() const { return entries_.size(); }
  uint64_t scans() const { return scans_; }
  // Inodes resolved but not cached because the cache was full.
  uint64_t not_cached() const { return not_cached_; }

 private:
  struct Entry {
    std::vector<SocketOwnerInfo> owners;
    absl::Time looked;     // when /proc was scanned for it
    absl::Time last_used;  // when a Resolve last asked for it
  };
  void MakeRoom(absl::Time now);

  size_t max_entries_;
  absl::Duration refresh_;
  SocketScanner scanner_;
  absl::flat_hash_map<uint64_t, Entry> entries_;
  uint64_t scans_ = 0;
  uint64_t not_cached_ = 0;
};

}  // namespace vigil
