// The memory capability: every process's RSS (anon, file, shmem) and swap
// per interval, its memory cgroup's usage and limit, and OOM kills
// (bpf/memory.bpf.c -> MemoryCollector -> the "memory" store table ->
// GetMemory, vigil memory).
#pragma once

#include "agent/capability.h"
#include "agent/memory/memory_aggregate.h"
#include "agent/memory/memory_collector.h"
#include "agent/memory/memory_config.h"
#include "agent/profile/profile_capability.h"

namespace vigil {

class MemoryCapability final : public Capability {
 public:
  explicit MemoryCapability(const MemoryConfig& config) : config_(config) {}

  static constexpr char kName[] = "memory";
  // Init loads bpf/memory.bpf.c (the task iterator and the OOM hook) and
  // finds the memory cgroup hierarchy. Collect runs the task iterator once,
  // reads the cgroups it found, drains OOM kills, and feeds the growth
  // detector.
  VIGIL_CAPABILITY_OVERRIDES();

  // GetMemory, from the store only.
  absl::StatusOr<v1::MemoryResponse> Query(const StoreView& store, const QueryContext& ctx,
                                           const v1::MemoryRequest& req) const;

  Table<MemoryInterval> table() const { return table_; }

 private:
  // Turns a detector event into an alert and publishes it.
  void Alert(const GrowthEvent& e, const MemoryInterval& iv, absl::Time now);
  // The top growing stacks of `pid` over [from, to] from the profiler's
  // page-fault records, and its large map calls, or why there are none to
  // read.
  void FillGrowingStacks(const StoreView& store, uint32_t pid, absl::Time from, absl::Time to,
                         size_t top, v1::GrowingStacks* out, v1::LargeMapCalls* maps) const;

  const MemoryConfig config_;
  Table<MemoryInterval> table_;
  std::unique_ptr<MemoryCollector> collector_;  // collection thread only
  std::string hostname_;
  // The agent's alert stream (set by Init; nullptr: growth alerts off).
  AlertStream* alerts_ = nullptr;
  std::unique_ptr<GrowthDetector> growth_;  // collection thread only
  // Set by Init: the page-fault records' owner (nullptr: profile off), and
  // the store to read them in when an alert fires.
  const ProfileCapability* profile_ = nullptr;
  std::unique_ptr<StoreView> store_;

  LossTotal<MemoryLossCounts> loss_total_;
  mutable absl::Mutex mu_;
  uint64_t oom_kills_total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration last_iteration_ ABSL_GUARDED_BY(mu_);
  size_t last_processes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t growth_fired_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t growth_firing_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t growth_overflow_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil
