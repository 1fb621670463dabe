// The udpdrops capability's settings, with their defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace vigil {

struct UdpDropsConfig {
  // Entries per stats buffer (there are two): distinct (netns, local addr,
  // port, reason) per interval. Overflow is counted as map_full.
  uint32_t max_entries = 8192;
  // Entries read per batch syscall.
  uint32_t batch_size = 1024;
  // Socket inodes whose owners are cached, and how long an owner lookup is
  // trusted before /proc is scanned again.
  uint32_t owner_cache_entries = 4096;
  absl::Duration owner_refresh = absl::Seconds(10);
  // Sockets remembered from udp_fail_queue_rcv_skb on kernels without rx_sk.
  uint32_t sock_info_entries = 4096;
  // Tests only: pretend kfree_skb has this many arguments (2, 3 or 4) to
  // exercise an older kernel's variant; 0 probes the running kernel.
  int force_kfree_skb_args = 0;
  // Distinct drop series kept for Prometheus (vigil_udp_drops_total).
  size_t metrics_max_series = 500;
};

}  // namespace vigil
