// Pure logic for the memory capability: the per-interval record the window
// store keeps, request validation, and merging intervals into a
// MemoryResponse (per-process and per-cgroup growth by least squares, one
// process's timeline, OOM kills). No BPF here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/loss_counts.h"
#include "agent/memory/linear_fit.h"
#include "bpf/memory.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

struct MemoryLossCounts : LossCounts<MemoryLossCounts> {
  uint64_t processes_over_cap = 0;  // not recorded: beyond max_processes
  uint64_t cgroups_over_cap = 0;    // usage not read: beyond max_cgroups
  uint64_t oom_ringbuf_full = 0;    // OOM kills the kernel side could not send
  uint64_t read_failed = 0;         // intervals whose task iteration failed

  static constexpr LossCause<Self> kCauses[] = {
      VIGIL_LOSS_CAUSE(processes_over_cap), VIGIL_LOSS_CAUSE(cgroups_over_cap),
      VIGIL_LOSS_CAUSE(oom_ringbuf_full), VIGIL_LOSS_CAUSE(read_failed)};
};

// One process at the end of an interval. Pages; 4 bytes each keep the
// record small (16 TiB per counter).
struct ProcMemSample {
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  uint64_t start_ns = 0;
  uint64_t cgroup_id = 0;
  uint32_t anon = 0, file = 0, shmem = 0, swap = 0;
  char comm[VIGIL_MEMORY_COMM_LEN] = {};

  uint64_t rss_pages() const { return uint64_t{anon} + file + shmem; }
};

struct CgroupMemSample {
  uint64_t id = 0;
  std::string path;  // relative to the controller's mount, "/" for the root
  uint64_t usage_bytes = 0;
  uint64_t limit_bytes = 0;  // 0: no limit
  uint64_t swap_bytes = 0;
  uint32_t processes = 0;
};

struct OomKillRecord {
  absl::Time at;
  uint32_t victim_pid = 0;
  std::string victim_comm;
  std::string victim_cgroup;
  uint64_t victim_rss_bytes = 0;
  bool victim_rss_at_kill = false;  // false: from the last interval before it
  uint32_t trigger_pid = 0;
  std::string trigger_comm;
};

struct MemoryInterval {
  std::vector<ProcMemSample> procs;
  std::vector<CgroupMemSample> cgroups;
  std::vector<OomKillRecord> ooms;
  uint64_t host_total_bytes = 0;      // /proc/meminfo MemTotal
  uint64_t host_available_bytes = 0;  // /proc/meminfo MemAvailable
  uint64_t page_size = 4096;
  MemoryLossCounts loss;
  size_t RecordCount() const { return procs.size() + cgroups.size() + ooms.size(); }
};

// Keeps the max_processes largest by RSS, counting the rest.
void CapProcesses(std::vector<ProcMemSample>* procs, uint32_t max_processes,
                  MemoryLossCounts* loss);

struct MemoryQuery {
  uint32_t pid = 0;
  v1::MemorySort sort = v1::MEMORY_SORT_RSS;
  uint32_t top = 20;
};
// INVALID_ARGUMENT with one line for a bad request.
absl::StatusOr<MemoryQuery> ValidateMemoryRequest(const v1::MemoryRequest& req);

// Bounds of GrowingStacks: stacks in vigil memory --pid and in a growth
// alert, and user frames per stack (the innermost: where memory is touched).
inline constexpr size_t kGrowingStacksTop = 5;
inline constexpr size_t kGrowingStacksAlertTop = 3;
inline constexpr size_t kGrowingStackFrames = 16;

// A process's top growing stacks from its page-fault profile (GetProfile's
// merge of its PROFILE_KIND_FAULT records, every frame): per-thread stacks
// summed by their `max_frames` innermost user frames (kernel frames
// dropped), the `top` with the most samples, most first.
void FoldGrowingStacks(const v1::ProfileResponse& prof, size_t top, size_t max_frames,
                       v1::GrowingStacks* out);

// Folds intervals (oldest first) into a response.
class MemoryMerger {
 public:
  explicit MemoryMerger(const MemoryQuery& q) : q_(q) {}
  void Add(const MemoryInterval& iv, absl::Time end);
  void Finish(v1::MemoryResponse* out);

 private:
  // Least-squares slope over (t, bytes) with t in seconds from the first.
  struct Series {
    LinearFit fit;
    uint64_t first = 0, last = 0, min = UINT64_MAX, max = 0;
    absl::Time first_at, last_at;
    void Add(double t, uint64_t bytes, absl::Time at);
    double Slope() const;
  };
  struct Proc {
    ProcMemSample last;
    uint64_t page_size = 4096;
    Series rss;
  };
  struct Cgroup {
    CgroupMemSample last;
    Series usage;
  };

  const MemoryQuery q_;
  absl::Time origin_ = absl::InfinitePast();
  // Keyed by (pid, start time): a reused pid is another process.
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Proc> procs_;
  absl::flat_hash_map<uint64_t, Cgroup> cgroups_;
  std::vector<OomKillRecord> ooms_;
  std::vector<v1::MemorySample> timeline_;
  uint64_t host_total_ = 0, host_available_ = 0;
  MemoryLossCounts loss_;
};

}  // namespace vigil
