// The udpdrops capability: UDP packets the kernel dropped, per socket,
// owner and reason (bpf/udpdrops.bpf.c -> UdpDropsCollector -> the
// "udpdrops" store table -> GetDrops, vigil drops; vigil_udp_drops_total).
#pragma once

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
  // Init reads this kernel's drop reason names from BTF, loads
  // bpf/udpdrops.bpf.c and attaches the kfree_skb variant it has. Collect
  // drains the retired stats hash and names each socket's owner (a bounded
  // cache over /proc).
  VIGIL_CAPABILITY_OVERRIDES();

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

  LossTotal<UdpDropLossCounts> loss_total_;
  mutable absl::Mutex mu_;
  UdpDropSeries series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil
