// The cpu capability: exact CPU time per thread and per process each
// interval, from the scheduler's own runtime counters (bpf/cpu.bpf.c's task
// iterator -> CpuCollector -> the "cpu" store table -> GetTop, vigil top),
// and the host's CPU.
#pragma once

#include "agent/capability.h"
#include "agent/cpu/cpu_aggregate.h"
#include "agent/cpu/cpu_collector.h"
#include "agent/cpu/cpu_config.h"

namespace vigil {

class CpuCapability final : public Capability {
 public:
  explicit CpuCapability(const CpuConfig& config) : config_(config) {}

  static constexpr char kName[] = "cpu";
  VIGIL_CAPABILITY_OVERRIDES();

  // CPU per process and thread over [from, to], from the store only.
  CpuUsage Usage(const StoreView& store, absl::Time from, absl::Time to) const;
  // True when runtimes come from /proc rather than the iterator.
  bool from_proc() const { return from_proc_; }
  // The last pass's cost, in ns.
  uint64_t last_pass_ns() const;

 private:
  const CpuConfig config_;
  Table<CpuInterval> table_;
  std::unique_ptr<CpuCollector> collector_;  // collection thread only
  bool from_proc_ = false;                   // set by Init
  std::string fallback_reason_;              // set by Init
  std::vector<uint32_t> program_ids_;        // set by Init

  LossTotal<CpuLossCounts> loss_total_;
  mutable absl::Mutex mu_;
  uint64_t last_pass_ns_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t last_tasks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil
