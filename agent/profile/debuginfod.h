// Debug files fetched from debuginfod servers (elfutils' libdebuginfod), for
// stripped modules whose symbols are nowhere on this host. Fetching runs on
// one worker thread behind a bounded queue, never on the collection path:
// the symbolizer asks, gets "pending", names the module's frames by
// module+offset meanwhile, and picks the file up once Peek() says ready.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vigil {

struct DebuginfodConfig {
  // Servers, as in DEBUGINFOD_URLS (space-separated). Empty: vigild's own
  // $DEBUGINFOD_URLS at startup (off if unset); "off": never fetch.
  std::string urls;
  // The fetched files' cache, only ours (created 0700).
  std::string cache_dir = "/var/cache/vigil/debuginfod";
  // Bytes of fetched files kept on disk; the oldest go first.
  uint64_t cache_max_bytes = 256ull << 20;
  // Largest single debug file fetched (must fit the cache).
  uint64_t max_download_bytes = 128ull << 20;
  // One fetch, from connecting to the last byte.
  absl::Duration timeout = absl::Seconds(30);
  // Build-ids waiting to be fetched; more are dropped and counted (asked
  // again when their module is next loaded).
  uint32_t queue_size = 64;
  // A failed build-id is not asked for again before this.
  absl::Duration retry_after = absl::Minutes(10);
  // Failed build-ids remembered; the oldest is forgotten first.
  uint32_t negative_entries = 4096;
};

// The URLs a fetcher would use under `config` and the environment's
// $DEBUGINFOD_URLS (`env_urls`, may be null); empty: off.
std::string EffectiveDebuginfodUrls(const DebuginfodConfig& config, const char* env_urls);

struct DebuginfodStats {
  bool enabled = false;
  uint64_t fetched = 0;          // debug files downloaded (or found in the cache)
  uint64_t failed = 0;           // fetches that failed (not found, timeout, too big...)
  uint64_t negative_hits = 0;    // requests refused by the negative cache
  uint64_t queue_drops = 0;      // requests that did not fit the queue
  uint64_t cache_bytes = 0;      // bytes of fetched files on disk now
  uint64_t cache_evictions = 0;  // files deleted to stay within cache_max_bytes
};

// Build-ids whose fetch failed, each with a time before which it is not
// asked for again. Bounded: past max_entries the oldest entry is forgotten.
class NegativeCache {
 public:
  explicit NegativeCache(size_t max_entries) : max_entries_(max_entries) {}
  void Add(const std::string& build_id, absl::Time retry_at);
  // True (and the retry time) while build_id must not be asked for.
  bool Blocked(const std::string& build_id, absl::Time now, absl::Time* retry_at) const;
  void Erase(const std::string& build_id);
  size_t size() const { return entries_.size(); }
  uint64_t forgotten() const { return forgotten_; }

 private:
  size_t max_entries_;
  std::list<std::string> order_;  // front: oldest
  absl::flat_hash_map<std::string, std::pair<absl::Time, std::list<std::string>::iterator>>
      entries_;
  uint64_t forgotten_ = 0;
};

// The on-disk cache directory, bounded in bytes: Trim() deletes the least
// recently modified files (never following symlinks) until the total fits.
class DebugFileCache {
 public:
  DebugFileCache(std::string dir, uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  struct TrimResult {
    uint64_t bytes = 0;                // left on disk
    std::vector<std::string> evicted;  // paths deleted
  };
  // Walks dir/ and dir/*/ (libdebuginfod's layout: dir/BUILDID/debuginfo).
  TrimResult Trim() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  uint64_t max_bytes_;
};

// Creates `dir` (and parents) as a 0700 directory owned by this user, and
// refuses one that is a symlink, another user's, or group/world-writable.
absl::Status PrepareCacheDir(const std::string& dir);

// What one fetch may do: give up at `deadline`, on more than max_bytes, or
// when *stop turns true.
struct FetchControl {
  absl::Time deadline;
  uint64_t max_bytes = 0;
  const std::atomic<bool>* stop = nullptr;
};
// Fetches the debug file of a hex build-id; returns its path in the cache.
using FetchFn =
    std::function<absl::StatusOr<std::string>(const std::string& build_id, const FetchControl&)>;

// libdebuginfod's debuginfod_find_debuginfo under `urls` and the config's
// cache, bounds and timeout. libdebuginfod 0.188 takes its settings only
// from the environment (DEBUGINFOD_URLS, _CACHE_PATH, _TIMEOUT, _MAXSIZE,
// _MAXTIME), read at each query: this sets them, once, when called. Call it
// while the agent is still single-threaded (capability Init). Fails if
// libdebuginfod.so.1 cannot be loaded (it is dlopen()ed, not linked).
absl::StatusOr<FetchFn> NewLibdebuginfodFetch(const DebuginfodConfig& config,
                                              const std::string& urls);

class DebuginfodFetcher {
 public:
  // Starts the worker thread.
  DebuginfodFetcher(const DebuginfodConfig& config, FetchFn fetch);
  // Stops the worker (aborting a running fetch) and joins it.
  ~DebuginfodFetcher();
  DebuginfodFetcher(const DebuginfodFetcher&) = delete;
  DebuginfodFetcher& operator=(const DebuginfodFetcher&) = delete;

  enum class State { kUnknown, kPending, kReady, kFailed };
  struct Answer {
    State state = State::kUnknown;
    std::string path;     // kReady: the debug file
    absl::Time retry_at;  // kFailed: not asked for again before this
  };
  // Where build_id stands; queues a fetch if it is neither fetched, queued,
  // nor refused by the negative cache. Never blocks on the network.
  Answer Request(const std::string& build_id);
  // Where build_id stands, without queueing or counting anything.
  Answer Peek(const std::string& build_id) const;
  // Bumped whenever a fetch finishes (either way).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  DebuginfodStats stats() const;
  // Test hook: blocks until the queue is empty and no fetch runs.
  void WaitIdle() const;

 private:
  void Loop();
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DebuginfodConfig config_;
  const FetchFn fetch_;
  DebugFileCache cache_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> queued_ ABSL_GUARDED_BY(mu_);  // queued or running
  // Fetched and still on disk: build-id -> path (bounded by the cache's
  // files: an evicted file's entry goes with it).
  absl::flat_hash_map<std::string, std::string> ready_ ABSL_GUARDED_BY(mu_);
  NegativeCache negative_ ABSL_GUARDED_BY(mu_);
  DebuginfodStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after every member above exists
};

}  // namespace vigil
