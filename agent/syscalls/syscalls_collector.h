// Loads bpf/syscalls.bpf.c, attaches it to tp_btf sys_enter/sys_exit, and
// drains one interval of per-thread syscall stats per Collect() call.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf_util.h"
#include "agent/syscalls/syscalls_aggregate.h"
#include "agent/syscalls/syscalls_config.h"

struct syscalls_bpf;

namespace vigil {

class SyscallsCollector {
 public:
  // Opens, sizes, loads and attaches. Errors name the step that failed.
  static absl::StatusOr<std::unique_ptr<SyscallsCollector>> Create(const SyscallsConfig& config);

  // Retires the active stats buffer (the swap waits for running programs)
  // and drains it: one interval of deltas. Loss counters are deltas too.
  absl::StatusOr<SyscallInterval> Collect();

  // Kernel ids of the loaded programs (for tests and status).
  std::vector<uint32_t> ProgramIds() const;
  // The sys_exit program's tail-call slots (bpf/syscalls.bpf.c
  // exit_hooks), valid while this collector lives.
  int exit_hooks_fd() const;

  // Detaches and frees everything (the skeleton owns all of it).
  ~SyscallsCollector();
  SyscallsCollector(const SyscallsCollector&) = delete;
  SyscallsCollector& operator=(const SyscallsCollector&) = delete;

 private:
  SyscallsCollector(const SyscallsConfig& config, SkelPtr<syscalls_bpf> skel);
  // Sampled latency: puts the timing marks of calls still in flight
  // (drained from the retired buffer) into the active one. Returns how many
  // could not be carried.
  uint64_t CarryTimingMarks();

  SyscallsConfig config_;
  SkelPtr<syscalls_bpf> skel_;
  DoubleBuffer buffers_;
  CounterDeltas<SyscallLossCounts> counters_{
      SYSCALL_CTR_MAX,
      "syscalls: reading counters",
      {{&SyscallLossCounts::map_full, SYSCALL_CTR_MAP_FULL},
       {&SyscallLossCounts::no_enter, SYSCALL_CTR_NO_ENTER},
       {&SyscallLossCounts::storage_fail, SYSCALL_CTR_STORAGE_FAIL},
       {&SyscallLossCounts::nr_out_of_range, SYSCALL_CTR_NR_OUT_OF_RANGE}}};
  std::vector<syscall_key> keys_;
  std::vector<syscall_stats> values_;
  // Entries drained with a timing mark, for CarryTimingMarks (at most one
  // buffer's worth).
  std::vector<std::pair<syscall_key, syscall_stats>> in_flight_;
};

}  // namespace vigil
