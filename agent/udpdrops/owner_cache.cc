#include "agent/udpdrops/owner_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/unique_c.h"

namespace vigil {
namespace {

using DirPtr = UniqueC<DIR, closedir>;

std::string ReadComm(const std::string& pid_dir) {
  std::ifstream f(pid_dir + "/comm");
  std::string comm;
  std::getline(f, comm);
  return comm;
}

}  // namespace

std::optional<uint64_t> ParseSocketInode(absl::string_view link) {
  if (!absl::ConsumePrefix(&link, "socket:[") || !absl::ConsumeSuffix(&link, "]")) {
    return std::nullopt;
  }
  uint64_t ino = 0;
  if (!absl::SimpleAtoi(link, &ino)) return std::nullopt;
  return ino;
}

OwnerMap ScanProcForSockets(const absl::flat_hash_set<uint64_t>& wanted,
                            const std::string& proc_root) {
  OwnerMap found;
  if (wanted.empty()) return found;
  DirPtr proc(opendir(proc_root.c_str()));
  if (!proc) return found;
  while (dirent* pe = readdir(proc.get())) {
    uint32_t pid = 0;
    if (!absl::SimpleAtoi(pe->d_name, &pid)) continue;
    const std::string pid_dir = absl::StrCat(proc_root, "/", pe->d_name);
    // Processes come and go during the walk; a vanished one is skipped.
    DirPtr fds(opendir((pid_dir + "/fd").c_str()));
    if (!fds) continue;
    std::string comm;
    bool have_comm = false;
    while (dirent* fe = readdir(fds.get())) {
      if (fe->d_name[0] == '.') continue;
      char target[64];
      const ssize_t n = readlinkat(dirfd(fds.get()), fe->d_name, target, sizeof(target) - 1);
      if (n <= 0) continue;
      const std::optional<uint64_t> found_ino =
          ParseSocketInode(absl::string_view(target, static_cast<size_t>(n)));
      if (!found_ino || !wanted.contains(*found_ino)) continue;
      const uint64_t ino = *found_ino;
      std::vector<SocketOwnerInfo>& owners = found[ino];
      if (!owners.empty() && owners.back().pid == pid) continue;  // two fds, one process
      if (!have_comm) {
        comm = ReadComm(pid_dir);
        have_comm = true;
      }
      owners.push_back({pid, comm});
    }
  }
  for (auto& [ino, owners] : found) {
    std::sort(owners.begin(), owners.end(),
              [](const SocketOwnerInfo& a, const SocketOwnerInfo& b) { return a.pid < b.pid; });
    if (owners.size() > kMaxOwnersPerSocket) owners.resize(kMaxOwnersPerSocket);
  }
  return found;
}

OwnerCache::OwnerCache(size_t max_entries, absl::Duration refresh, SocketScanner scanner)
    : max_entries_(max_entries), refresh_(refresh), scanner_(std::move(scanner)) {}

void OwnerCache::MakeRoom(absl::Time now) {
  if (entries_.size() < max_entries_) return;
  // Drop everything not asked for within a refresh period (sockets that
  // stopped dropping, and with them processes that exited).
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.last_used < now - refresh_) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
}

OwnerMap OwnerCache::Resolve(const absl::flat_hash_set<uint64_t>& inodes, absl::Time now) {
  absl::flat_hash_set<uint64_t> stale;
  for (uint64_t ino : inodes) {
    auto it = entries_.find(ino);
    if (it == entries_.end() || it->second.looked <= now - refresh_) stale.insert(ino);
  }
  OwnerMap scanned;
  if (!stale.empty()) {
    scanned = scanner_(stale);
    ++scans_;
  }
  OwnerMap out;
  bool room_made = false;  // one eviction pass per call keeps this O(n)
  for (uint64_t ino : inodes) {
    if (stale.contains(ino)) {
      // Nobody holding it is remembered too, so a closed socket's drops do
      // not rescan /proc every interval.
      std::vector<SocketOwnerInfo> owners;
      if (auto s = scanned.find(ino); s != scanned.end()) owners = std::move(s->second);
      out[ino] = owners;
      auto it = entries_.find(ino);
      if (it == entries_.end()) {
        if (!room_made) MakeRoom(now);
        room_made = true;
        if (entries_.size() >= max_entries_) {
          ++not_cached_;
          continue;
        }
        it = entries_.emplace(ino, Entry{}).first;
      }
      it->second.owners = std::move(owners);
      it->second.looked = now;
      it->second.last_used = now;
    } else {
      Entry& e = entries_[ino];
      e.last_used = now;
      out[ino] = e.owners;
    }
  }
  return out;
}

}  // namespace vigil
