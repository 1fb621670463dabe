// The syscalls capability: per-thread syscall counts, errors and latency
// (bpf/syscalls.bpf.c -> SyscallsCollector -> the "syscalls" store table ->
// GetSyscalls, vigil syscalls; Prometheus vigil_syscalls_*).
#pragma once

#include "agent/capability.h"
#include "agent/metrics/syscall_series.h"
#include "agent/syscalls/syscalls_aggregate.h"
#include "agent/syscalls/syscalls_collector.h"
#include "agent/syscalls/syscalls_config.h"

namespace vigil {

class SyscallsCapability final : public Capability {
 public:
  // store_max_records: the table's record cap; metrics_max_processes: the
  // Prometheus series' process-name cap.
  SyscallsCapability(const SyscallsConfig& config, size_t store_max_records,
                     size_t metrics_max_processes);

  static constexpr char kName[] = "syscalls";
  // Init loads bpf/syscalls.bpf.c and attaches tp_btf sys_exit (and
  // sys_enter when latency is measured). Collect flips the double-buffered
  // stats hash and drains the retired one into one SyscallInterval.
  VIGIL_CAPABILITY_OVERRIDES();

  // GetSyscalls, from the store only.
  absl::StatusOr<v1::SyscallsResponse> Query(const StoreView& store, const QueryContext& ctx,
                                             const v1::SyscallsRequest& req) const;

  Table<SyscallInterval> table() const { return table_; }
  // Whether the last Collect succeeded (the spin detector needs to know).
  bool last_ok() const;
  // The sys_exit program's tail-call slots, for a later capability's Init
  // to put its exit hook in (the profiler's large map calls): the map lives
  // until Stop, so a user keeps its own dup. -1 before Init.
  int exit_hooks_fd() const { return exit_hooks_fd_; }

 private:
  const SyscallsConfig config_;
  const size_t store_max_records_;
  std::string hostname_;
  Table<SyscallInterval> table_;
  int exit_hooks_fd_ = -1;  // set by Init, then read-only
  // Collection thread only.
  std::unique_ptr<SyscallsCollector> collector_;

  LossTotal<SyscallLossCounts> loss_total_;
  mutable absl::Mutex mu_;  // what Collect publishes for the readers
  SyscallSeries series_ ABSL_GUARDED_BY(mu_);
  double fill_ ABSL_GUARDED_BY(mu_) = 0;  // last interval's records / max_entries
  bool last_ok_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vigil
