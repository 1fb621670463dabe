// The user-space half of the in-kernel unwinder: compiles each mapped file's
// CFI once (cfi_compiler.h), keeps the rows in the program's mmapped row
// array, and tells the program each process's executable mappings.
//
// Driven by the program itself: a sample in a process with no mappings (or a
// pc outside them) leaves the tgid in `unwind_wanted`, and a worker thread
// of its own polls that map and loads those processes, within a time budget
// per poll: compiling never delays the collection loop, and a new process
// unwinds within about one poll period. Files are keyed by identity
// (device, inode, size, mtime), so libc is compiled once for every process.
// A file no process maps any more keeps its rows for `keep_idle` (the next
// short-lived compiler or shell started from the same binary needs them
// again) or until the rows are needed for another file, then is freed.
// Everything is bounded: rows, files, processes, mappings per process, and
// what did not fit is counted.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/bpf_util.h"
#include "agent/profile/cfi_compiler.h"
#include "bpf/unwind.h"

namespace vigil {

struct UnwindConfig {
  // False: every mapping is walked with frame pointers (the comparison
  // mode, and what a kernel without bpf_loop gets).
  bool cfi = true;
  // Rows of all files together (8 bytes each, locked kernel memory).
  uint32_t max_rows = 2u << 20;
  // Rows one file may have; a bigger file is walked with frame pointers.
  uint32_t max_file_rows = 1u << 20;
  // Distinct files with tables, and processes with mappings loaded.
  uint32_t max_files = 4096;
  uint32_t max_processes = 4096;
  // How often the worker looks again while work waits (loads deferred past
  // a look's budget, a re-read held back by reload_every), and the time one
  // look may spend loading and compiling; the rest waits for the next.
  absl::Duration poll = absl::Milliseconds(50);
  absl::Duration budget = absl::Milliseconds(300);
  // With nothing waiting, the worker sleeps until the program's wake-up (a
  // ring buffer record per new request) or this long: a request whose
  // wake-up was lost (the ring buffer full) waits at most this. Looking
  // every `poll` instead, 20 times a second, cost an idle agent about a
  // third of its CPU (0.35-0.45% of a core -> 0.22-0.28%, measured).
  absl::Duration idle_poll = absl::Seconds(1);
  // A process asking again (a pc outside its mappings: dlopen, JIT) is
  // re-read at most this often (its files are cached: a re-read costs one
  // /proc/PID/maps parse).
  absl::Duration reload_every = absl::Milliseconds(50);
  // How long a file no process maps keeps its table.
  absl::Duration keep_idle = absl::Seconds(30);
};

struct UnwindStats {
  uint64_t processes = 0;         // processes with mappings loaded, now
  uint64_t files = 0;             // files with CFI tables, now
  uint64_t files_fp = 0;          // mapped files without usable CFI, now
  uint64_t rows = 0;              // rows in use, now
  uint64_t row_capacity = 0;      // rows the table holds
  uint64_t loads = 0;             // process mappings (re)loaded, since start
  uint64_t compiled = 0;          // files compiled, since start
  uint64_t compile_failed = 0;    // files whose CFI could not be compiled
  uint64_t compile_ns = 0;        // time spent compiling
  uint64_t rows_full = 0;         // files refused: the row table was full
  uint64_t retried = 0;           // processes re-read after rows were freed
  uint64_t files_full = 0;        // files refused: max_files reached
  uint64_t processes_full = 0;    // processes refused: max_processes reached
  uint64_t mappings_dropped = 0;  // mappings beyond VIGIL_UNWIND_MAX_MAPPINGS
  uint64_t deferred = 0;          // loads left for a later interval (budget)
  uint64_t evicted_files = 0;     // files freed after their last mapping went
};

// First-fit allocation of row extents, with freed extents held back for one
// Service() call: a program that looked up a file before its eviction may
// still read its rows during that interval.
class ExtentAllocator {
 public:
  explicit ExtentAllocator(uint32_t capacity);
  // The first row of `n` free rows, or nullopt-like false.
  bool Allocate(uint32_t n, uint32_t* first);
  void Free(uint32_t first, uint32_t n);  // usable after the next Release()
  void Release();                         // quarantined extents become free
  uint32_t used() const { return used_; }
  uint32_t capacity() const { return capacity_; }

 private:
  void Insert(uint32_t first, uint32_t n);
  uint32_t capacity_;
  uint32_t used_ = 0;
  std::map<uint32_t, uint32_t> free_;  // first -> length, coalesced
  std::vector<std::pair<uint32_t, uint32_t>> quarantine_;
};

// One line of /proc/PID/maps that maps executable code.
struct ExecMapping {
  uint64_t start = 0, end = 0, offset = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // "" for anonymous memory; "[vdso]"
};
// Parses the executable mappings out of a maps file's text (bounded by the
// caller). Malformed lines are skipped.
std::vector<ExecMapping> ParseExecMappings(const std::string& maps);

struct UnwindMaps {
  int rows_fd = -1;
  int files_fd = -1;
  int procs_fd = -1;
  int wanted_fd = -1;
  int notify_fd = -1;  // ring buffer: a request was made
};

class UnwindTables {
 public:
  UnwindTables(const UnwindConfig& config, const UnwindMaps& maps);
  ~UnwindTables();  // stops the worker
  UnwindTables(const UnwindTables&) = delete;
  UnwindTables& operator=(const UnwindTables&) = delete;

  // Starts the worker; Stop() (or the destructor) joins it.
  void Start();
  void Stop();
  UnwindStats stats() const;

 private:
  // Loads the processes the program asked for, within the budget, and
  // forgets processes that exited.
  // One look; true when work is left waiting for the next (see poll).
  bool Service() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct FileKey {
    uint64_t dev = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0;
    template <typename H>
    friend H AbslHashValue(H h, const FileKey& k) {
      return H::combine(std::move(h), k.dev, k.inode, k.size, k.mtime_ns);
    }
    bool operator==(const FileKey& o) const {
      return dev == o.dev && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  struct File {
    uint32_t id = VIGIL_UNWIND_FILE_FP;  // VIGIL_UNWIND_FILE_FP: no table
    uint32_t first = 0, rows = 0;
    uint32_t refs = 0;
    absl::Time idle_since;  // when refs fell to 0
    std::vector<LoadSegment> segments;
  };
  struct Proc {
    uint64_t start_time = 0;
    std::vector<FileKey> files;
    absl::Time loaded;
  };

  absl::Status Load(uint32_t tgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The file behind a mapping, compiled if new; nullptr if it cannot be read.
  File* FileFor(uint32_t tgid, const ExecMapping& m, FileKey* key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  File* Compile(const FileKey& key, absl::StatusOr<CompiledCfi> cfi)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drop(uint32_t tgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unref(const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(absl::flat_hash_map<FileKey, File>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the longest-idle unreferenced file; false if there is none.
  bool EvictOneIdle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const UnwindConfig config_;
  const UnwindMaps maps_;
  // The worker holds mu_ while it works (a compile can take a second);
  // stats() reads the snapshot it publishes after each pass instead.
  absl::Mutex mu_;
  mutable absl::Mutex snapshot_mu_;
  UnwindStats snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ExtentAllocator rows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<FileKey, File> files_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, Proc> procs_ ABSL_GUARDED_BY(mu_);
  // Asked for but not loaded yet (the budget ran out), oldest first.
  std::vector<uint32_t> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint32_t> pending_set_ ABSL_GUARDED_BY(mu_);
  absl::Time last_prune_ ABSL_GUARDED_BY(mu_);
  // A file refused for want of rows is not cached as "no CFI": that would
  // pin it to frame pointers for as long as any process maps it (a burst
  // of big compilers once left python3.11 without tables). Instead it is
  // remembered with the free count it failed against, not compiled again
  // until rows are freed, and the processes that map it are re-read then.
  absl::flat_hash_map<FileKey, uint64_t> refused_full_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint32_t> starved_ ABSL_GUARDED_BY(mu_);
  uint64_t frees_ ABSL_GUARDED_BY(mu_) = 0;  // rows extents freed, since start
  uint64_t frees_at_retry_ ABSL_GUARDED_BY(mu_) = 0;
  UnwindStats stats_ ABSL_GUARDED_BY(mu_);
  RingBufferPtr notify_;
  std::thread worker_;
};

}  // namespace vigil
