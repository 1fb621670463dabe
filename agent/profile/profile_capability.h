// The profile capability: sampled CPU and page-fault stacks, symbolized at
// collection (bpf/profile.bpf.c -> ProfileCollector -> the "profile" store
// table -> GetHot / GetProfile, vigil hot / profile / flamegraph [--kind]).
#pragma once

#include "agent/capability.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/profile/profile_collector.h"
#include "agent/profile/profile_config.h"
#include "agent/syscalls/syscalls_capability.h"

namespace vigil {

class ProfileCapability final : public Capability {
 public:
  // store_max_records caps CPU stack records, fault_store_max_records
  // page-fault ones: two tables, so neither kind evicts the other.
  ProfileCapability(const ProfileConfig& config, size_t store_max_records,
                    size_t fault_store_max_records);

  static constexpr char kName[] = "profile";
  // Init opens the cpu-clock perf event on every CPU and attaches
  // bpf/profile.bpf.c to it, to the page-fault tracepoints and to the
  // exec/fork hooks. Collect loads the unwind tables processes asked for,
  // drains the retired counts and stacks, and symbolizes their frames into
  // one interval.
  VIGIL_CAPABILITY_OVERRIDES();

  // GetHot and GetProfile, from the store only.
  absl::StatusOr<v1::HotResponse> QueryHot(const StoreView& store, const QueryContext& ctx,
                                           const v1::HotRequest& req) const;
  absl::StatusOr<v1::ProfileResponse> QueryProfile(const StoreView& store, const QueryContext& ctx,
                                                   const v1::ProfileRequest& req) const;

  // OK when samples of `kind` are taken here, else FAILED_PRECONDITION
  // saying why not.
  absl::Status CheckKind(v1::ProfileKind kind) const;
  // CPU samples (spin reads them).
  Table<ProfileInterval> table() const { return table_; }
  uint32_t sample_hz() const { return config_.sample_hz; }
  // The uprobe program and maps vigil probe --stacks uses (set by Init,
  // then read-only; the program stays valid until Stop, which the agent
  // calls after every session ended).
  const ProbeStackHooks& probe_stack_hooks() const { return probe_hooks_; }

  // One process's page-fault stacks over [from, to], every frame, merged
  // as GetProfile merges them, for readers that resolved their range (and
  // hold a merge slot, if any) already: vigil memory --pid and growth
  // alerts. FAILED_PRECONDITION saying why when page faults are not
  // sampled.
  absl::StatusOr<v1::ProfileResponse> FaultProfile(const StoreView& store, uint32_t pid,
                                                   absl::Time from, absl::Time to) const;
  // One process's large mmap/munmap/brk calls over [from, to] (same
  // callers): at most `top` stacks of at most `max_frames` user frames, or
  // `unavailable` saying why they are not recorded.
  void LargeMapCalls(const StoreView& store, uint32_t pid, absl::Time from, absl::Time to,
                     size_t top, size_t max_frames, v1::LargeMapCalls* out) const;

 private:
  // GetHot's and GetProfile's shared path (profile_capability.cc).
  template <typename Merger, typename Resp, typename Req>
  absl::StatusOr<Resp> Merge(const StoreView& store, const QueryContext& ctx, const Req& req,
                             absl::StatusOr<ProfileQuery> q) const;
  const ProfileConfig config_;
  // The table of records of `kind` (enum profile_kind).
  Table<ProfileInterval> TableFor(uint32_t kind) const {
    return kind == PROFILE_KIND_CPU ? table_ : memory_table_;
  }
  bool memory_on() const { return fault_period_ > 0 || map_min_bytes_ > 0; }

  const size_t store_max_records_, fault_store_max_records_;
  Table<ProfileInterval> table_;  // CPU
  // Page faults and large map calls (registered if either is recorded).
  Table<ProfileInterval> memory_table_;
  // Set by Init, then read-only: page faults per sample (0: not sampled),
  // and the smallest map call recorded (0: none are).
  uint32_t fault_period_ = 0;
  uint64_t map_min_bytes_ = 0;
  std::string map_off_reason_;
  std::unique_ptr<ProfileCollector> collector_;  // collection thread only
  ProbeStackHooks probe_hooks_;

  mutable absl::Mutex mu_;
  ProfileLossCounts loss_total_ ABSL_GUARDED_BY(mu_);
  // The profiler's fixed facts and symbol-cache counters, so status never
  // touches the collector.
  v1::ProfilerStatus status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil
