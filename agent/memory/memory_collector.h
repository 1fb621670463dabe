// Loads bpf/memory.bpf.c: a task iterator read once per interval (every
// process's RSS counters) and the mark_victim variant the running kernel
// has (OOM kills, through a ring buffer). Names cgroups and reads their
// usage from cgroupfs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/bpf_util.h"
#include "agent/memory/cgroup_reader.h"
#include "agent/memory/memory_aggregate.h"
#include "agent/memory/memory_config.h"

struct memory_bpf;

namespace vigil {

class MemoryCollector {
 public:
  static absl::StatusOr<std::unique_ptr<MemoryCollector>> Create(const MemoryConfig& config);

  // One interval: every process's memory now, its cgroups, the OOM kills
  // since the last call, the host's totals.
  absl::StatusOr<MemoryInterval> Collect(absl::Time now);

  // Why the capability runs with less than it promises; empty if it does not.
  const std::string& degraded() const { return degraded_; }
  std::vector<uint32_t> ProgramIds() const;
  // The last Collect's task iteration and read, for status and the README.
  absl::Duration last_iteration() const { return last_iteration_; }

  ~MemoryCollector();
  MemoryCollector(const MemoryCollector&) = delete;
  MemoryCollector& operator=(const MemoryCollector&) = delete;

 private:
  MemoryCollector(const MemoryConfig& config, SkelPtr<memory_bpf> skel);
  absl::StatusOr<std::vector<ProcMemSample>> Iterate();
  static int OnOom(void* self, void* data, size_t size);

  const MemoryConfig config_;
  SkelPtr<memory_bpf> skel_;
  // Declared after skel_: released before the programs and maps they use.
  LinkPtr iter_link_;
  RingBufferPtr oom_rb_;
  std::unique_ptr<CgroupReader> cgroups_;
  std::string degraded_;
  uint64_t page_size_ = 4096;
  absl::Time boot_ = absl::UnixEpoch();  // wall time at boot, for ring buffer stamps
  absl::Duration last_iteration_;
  uint64_t last_ringbuf_full_ = 0;
  // The last interval's processes by pid: a 6.1 kill carries only the pid.
  absl::flat_hash_map<uint32_t, ProcMemSample> last_seen_;
  std::vector<memory_oom> pending_ooms_;
  uint64_t oom_over_cap_ = 0;  // kills beyond 4096 in one interval
  uint64_t iter_cut_ = 0;      // passes cut short (far more tasks than the cap)
  std::vector<char> buf_;
};

}  // namespace vigil
