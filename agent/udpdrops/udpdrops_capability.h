// The udpdrops capability: UDP packets the kernel dropped, per socket,
// owner and reason (bpf/udpdrops.bpf.c -> UdpDropsCollector -> the
// "udpdrops" store table -> GetDrops, vigil drops; vigil_udp_drops_total).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/capability.h"
#include "agent/metrics/udpdrop_series.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "agent/udpdrops/udpdrops_collector.h"
#include "agent/udpdrops/udpdrops_config.h"

namespace vigil {

class UdpDropsCapability final : public Capability {
 public:
  UdpDropsCapability(const UdpDropsConfig& config, size_t store_max_records);

  static constexpr char kName[] = "udpdrops";
  const char* name() const override { return kName; }
  // Reads this kernel's drop reason names from BTF, loads
  // bpf/udpdrops.bpf.c, attaches the kfree_skb variant it has.
  absl::Status Init(const InitContext& ctx) override;
  // Drains the retired stats hash and names each socket's owner (a
  // bounded cache over /proc).
  absl::Status Collect(const IntervalSpan& span, StoreWriter& store) override;
  void Stop() override;
  void FillStatus(const StoreView& store, v1::StatusResponse* out) const override;
  void RenderMetrics(const StoreView& store, Exposition* out) const override;
  std::vector<std::pair<std::string, uint64_t>> Losses(const StoreView& store) const override;

  // GetDrops, from the store only.
  absl::StatusOr<v1::DropsResponse> Query(const StoreView& store, const QueryContext& ctx,
                                          const v1::DropsRequest& req) const;

 private:
  const UdpDropsConfig config_;
  const size_t store_max_records_;
  // Set once by Init: the running kernel's drop reason names.
  DropReasonTable reasons_;
  Table<UdpDropInterval> table_;
  std::unique_ptr<UdpDropsCollector> collector_;  // collection thread only

  mutable absl::Mutex mu_;
  UdpDropLossCounts loss_total_ ABSL_GUARDED_BY(mu_);
  UdpDropSeries series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil
