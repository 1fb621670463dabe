// Pure logic for the udpdrops capability: the per-interval record kept in
// the window store, request validation, merging intervals into a
// DropsResponse, and the one-sentence advice per reason. No BPF here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/loss_counts.h"
#include "agent/udpdrops/kernel_btf.h"
#include "agent/udpdrops/owner_cache.h"
#include "bpf/udpdrops.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

// What the kernel side (and the owner cache) could not record.
struct UdpDropLossCounts : LossCounts<UdpDropLossCounts> {
  uint64_t map_full = 0;
  uint64_t bad_header = 0;
  uint64_t owner_cache_full = 0;
  // Entries deleted unread because draining the retired buffer failed.
  uint64_t drain_failed = 0;

  static constexpr LossCause<Self> kCauses[] = {
      VIGIL_LOSS_CAUSE(map_full), VIGIL_LOSS_CAUSE(bad_header), VIGIL_LOSS_CAUSE(owner_cache_full),
      VIGIL_LOSS_CAUSE(drain_failed)};
};

// One kernel aggregate over one interval, with its socket's owners as seen
// when the interval was collected.
struct UdpDropRecord {
  udpdrop_key key = {};
  udpdrop_stats stats = {};
  std::vector<SocketOwnerInfo> owners;
};

struct UdpDropInterval {
  std::vector<UdpDropRecord> records;
  UdpDropLossCounts loss;
  size_t RecordCount() const { return records.size(); }
};

inline constexpr uint32_t kDefaultDropsTop = 100;
inline constexpr uint32_t kMaxDropsTop = 10000;

struct DropsQuery {
  uint32_t port = 0;               // 0: any
  std::optional<uint32_t> reason;  // kernel value, or UDPDROP_REASON_UNKNOWN
  uint32_t top = kDefaultDropsTop;
};

// INVALID_ARGUMENT naming the bad field. The reason must be one the running
// kernel names (or "unknown").
absl::StatusOr<DropsQuery> ValidateDropsRequest(const v1::DropsRequest& req,
                                                const DropReasonTable& reasons);

// "10.0.0.1", "fd00::1"; family is UDPDROP_AF_INET or UDPDROP_AF_INET6.
std::string FormatIp(uint8_t family, const uint8_t addr[16]);

// One sentence on what to do about drops for `reason` (a table name such as
// "SOCKET_RCVBUFF", or "unknown").
std::string ExplainDrop(absl::string_view reason);

// Sums intervals per (netns, family, addr, port, reason); keeps the newest
// "last" fields and owners.
class DropsMerger {
 public:
  DropsMerger(const DropsQuery& query, const DropReasonTable& reasons)
      : query_(query), reasons_(reasons) {}

  void Add(const UdpDropInterval& interval, absl::Time interval_end);
  // Fills drops (ranked by count, then by key for a stable order),
  // rows_omitted, total and loss (map_full, bad_header, owner_cache_full).
  // seconds: length of the covered range, for rate_per_s.
  void Finish(double seconds, v1::DropsResponse* out) const;

 private:
  struct Key {
    udpdrop_key k;
    template <typename H>
    friend H AbslHashValue(H h, const Key& key) {
      return H::combine(std::move(h), key.k.netns, key.k.reason, key.k.port, key.k.family,
                        absl::string_view(reinterpret_cast<const char*>(key.k.addr), 16));
    }
    bool operator==(const Key& o) const;
  };
  struct Agg {
    uint64_t count = 0;
    udpdrop_stats last = {};  // newest interval's last-drop fields
    std::vector<SocketOwnerInfo> owners;
    absl::Time last_seen = absl::InfinitePast();
  };

  const DropsQuery& query_;
  const DropReasonTable& reasons_;
  absl::flat_hash_map<Key, Agg> merged_;
  UdpDropLossCounts loss_;
};

}  // namespace vigil
