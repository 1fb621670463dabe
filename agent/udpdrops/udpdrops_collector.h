// Loads bpf/udpdrops.bpf.c (the kfree_skb variant the running kernel's BTF
// matches), and drains one interval of UDP drop aggregates per Collect(),
// with each socket's owners resolved from /proc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/bpf_util.h"
#include "agent/udpdrops/kernel_btf.h"
#include "agent/udpdrops/owner_cache.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "agent/udpdrops/udpdrops_config.h"

struct udpdrops_bpf;

namespace vigil {

class UdpDropsCollector {
 public:
  // Probes the kernel, opens, sizes, loads and attaches. Errors name the
  // step that failed. A kernel that lacks reasons or rx_sk still loads, and
  // degraded() says what is missing.
  static absl::StatusOr<std::unique_ptr<UdpDropsCollector>> Create(const UdpDropsConfig& config);

  // Retires the active stats buffer (the swap waits for running programs),
  // drains it and resolves owners: one interval of deltas.
  absl::StatusOr<UdpDropInterval> Collect(absl::Time now);

  // Why the capability runs with less than it promises; empty if it does not.
  const std::string& degraded() const { return degraded_; }
  const DropReasonTable& reasons() const { return reasons_; }
  std::vector<uint32_t> ProgramIds() const;

  ~UdpDropsCollector();
  UdpDropsCollector(const UdpDropsCollector&) = delete;
  UdpDropsCollector& operator=(const UdpDropsCollector&) = delete;

 private:
  UdpDropsCollector(const UdpDropsConfig& config, SkelPtr<udpdrops_bpf> skel,
                    DropReasonTable reasons, std::string degraded);
  // Without rx_sk: fills buffer-full rows' socket fields from sock_info.
  void JoinSockInfo(UdpDropInterval* out);

  UdpDropsConfig config_;
  SkelPtr<udpdrops_bpf> skel_;
  DoubleBuffer buffers_;
  DropReasonTable reasons_;
  std::string degraded_;
  bool join_sock_info_ = false;
  std::optional<uint32_t> reason_rcvbuff_, reason_proto_mem_;
  OwnerCache owners_;
  CounterDeltas<UdpDropLossCounts> counters_{
      UDPDROP_CTR_MAX,
      "udpdrops: reading counters",
      {{&UdpDropLossCounts::map_full, UDPDROP_CTR_MAP_FULL},
       {&UdpDropLossCounts::bad_header, UDPDROP_CTR_BAD_HEADER}}};
  uint64_t last_not_cached_ = 0;
  std::vector<udpdrop_key> keys_;
  std::vector<udpdrop_stats> values_;
};

}  // namespace vigil
