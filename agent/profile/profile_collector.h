// Loads bpf/profile.bpf.c, opens one sampling perf event per online CPU and
// attaches the program to each, and drains one interval of in-kernel stack
// counts per Collect() call, symbolized on the spot (so processes that exit
// later keep named frames for as long as the store keeps the interval).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf_util.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/profile/profile_config.h"
#include "agent/profile/symbolizer.h"
#include "agent/profile/unwind_tables.h"
#include "common/unique_fd.h"

struct profile_bpf;

namespace vigil {

// vigil probe --stacks (agent/probe): the profiler's uprobe program, which
// walks the stack with the same unwind tables, and the maps it counts into
// (bpf/profile.h profile_probe_key). Valid while the collector lives.
struct ProbeStackHooks {
  bpf_program* prog = nullptr;
  int stacks_fd = -1;   // profile_probe_key -> calls
  int ustacks_fd = -1;  // profile_probe_ustack_key -> profile_user_stack
};

// Cumulative in-kernel unwinder counters (bpf/profile.h PROFILE_CTR_*).
struct UnwindSampleCounts {
  uint64_t frames = 0, cfi_frames = 0, fp_frames = 0;
  uint64_t ends[UNWIND_END_MAX] = {};
};

class ProfileCollector {
 public:
  // exit_hooks_fd: the syscalls capability's sys_exit tail-call slots
  // (SyscallsCapability::exit_hooks_fd), where the large map-call hook
  // goes instead of a sys_exit program of its own; -1 when there are none.
  static absl::StatusOr<std::unique_ptr<ProfileCollector>> Create(const ProfileConfig& config,
                                                                  int exit_hooks_fd = -1);

  // Retires the active buffer (the swap waits for running programs), reads
  // and clears it, and symbolizes every stack.
  // One interval of CPU samples (with the interval's loss counters) and one
  // of page-fault samples, kept in separate store tables so a fault-heavy
  // host cannot evict CPU history, nor the reverse.
  absl::StatusOr<ProfileIntervals> Collect();

  // "cpu-clock" or "cycles".
  const std::string& event() const { return event_; }
  uint32_t cpus() const { return static_cast<uint32_t>(links_.size()); }
  // Page-fault sampling: on (both tracepoint programs attached), and why it
  // is off when it was asked for (empty when on or not asked for).
  bool faults_on() const { return !fault_links_.empty(); }
  const std::string& fault_off_reason() const { return fault_off_reason_; }
  // Large map calls: recorded (the sys_exit program attached), and why not
  // when they were asked for.
  bool maps_on() const { return map_link_ != nullptr || exit_hooks_.get() >= 0; }
  const std::string& map_off_reason() const { return map_off_reason_; }
  // How the map-call hook runs: "tail call from the syscalls program" or
  // "own tp_btf/sys_exit program"; empty when off.
  const std::string& map_hook() const { return map_hook_; }
  SymbolCacheStats symbol_stats() const { return symbols_.stats(); }
  UnwindStats unwind_stats() const { return unwind_->stats(); }
  // As of the last Collect().
  const UnwindSampleCounts& unwind_counts() const { return unwind_counts_; }
  bool cfi() const { return config_.unwind.cfi; }
  std::vector<uint32_t> ProgramIds() const;
  ProbeStackHooks probe_stack_hooks() const;

  ~ProfileCollector();
  ProfileCollector(const ProfileCollector&) = delete;
  ProfileCollector& operator=(const ProfileCollector&) = delete;

 private:
  ProfileCollector(const ProfileConfig& config, SkelPtr<profile_bpf> skel);
  void StartUnwindTables();
  absl::Status AttachAllCpus();
  // Attaches the page-fault programs; on any failure neither stays
  // attached and fault_off_reason_ says why.
  void AttachFaults();
  // Puts the map-call hook in the exit_hooks slot, or attaches it on its
  // own; on failure map_off_reason_ says why.
  void AttachMaps(int exit_hooks_fd);

  ProfileConfig config_;
  SkelPtr<profile_bpf> skel_;
  std::vector<LinkPtr> links_;        // one per CPU; each owns its perf event fd
  std::vector<LinkPtr> fault_links_;  // the user and kernel page-fault programs
  std::string fault_off_reason_;
  LinkPtr exec_link_;    // forgets a process's mappings on exec
  LinkPtr fork_link_;    // gives a child its parent's mappings
  LinkPtr map_link_;     // large mmap/munmap/brk calls (tp_btf/sys_exit)
  UniqueFd exit_hooks_;  // ... or the syscalls program's slot holding it
  std::string map_off_reason_, map_hook_;
  std::unique_ptr<UnwindTables> unwind_;
  std::string event_;
  uint32_t active_ = 0;
  CounterDeltas<ProfileLossCounts> counters_{
      PROFILE_CTR_MAX,
      "profile: reading counters",
      {{&ProfileLossCounts::samples, PROFILE_CTR_SAMPLES},
       {&ProfileLossCounts::idle, PROFILE_CTR_IDLE},
       {&ProfileLossCounts::map_full, PROFILE_CTR_MAP_FULL},
       {&ProfileLossCounts::kernel_collisions, PROFILE_CTR_KERNEL_COLLISION},
       {&ProfileLossCounts::stack_map_full, PROFILE_CTR_STACK_MAP_FULL},
       {&ProfileLossCounts::no_buffer, PROFILE_CTR_NO_BUFFER},
       {&ProfileLossCounts::fault_samples, PROFILE_CTR_FAULT_SAMPLES},
       {&ProfileLossCounts::fault_no_user, PROFILE_CTR_FAULT_NO_USER},
       {&ProfileLossCounts::map_calls, PROFILE_CTR_MAP_CALLS},
       {&ProfileLossCounts::brk_unknown, PROFILE_CTR_BRK_UNKNOWN}}};
  UnwindSampleCounts unwind_counts_;
  SymbolCache symbols_;
  std::vector<profile_key> keys_;
  std::vector<profile_value> values_;
};

}  // namespace vigil
