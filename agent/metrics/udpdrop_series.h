// Cumulative UDP drop counters for Prometheus, per (reason, local port,
// netns). The first max_series label sets keep their own series; later ones
// are summed into port="other" (per reason), so counters stay monotonic and
// cardinality bounded.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "agent/metrics/exposition.h"
#include "agent/udpdrops/kernel_btf.h"
#include "agent/udpdrops/udpdrops_aggregate.h"

namespace vigil {

class UdpDropSeries {
 public:
  explicit UdpDropSeries(size_t max_series) : max_series_(max_series) {}

  void Add(const UdpDropInterval& interval, const DropReasonTable& reasons);
  void Render(Exposition* out) const;
  size_t overflowed_drops() const { return overflowed_; }

 private:
  // (reason name, port or "other", netns or "other")
  using Key = std::tuple<std::string, std::string, std::string>;
  const size_t max_series_;
  size_t admitted_ = 0;
  uint64_t overflowed_ = 0;
  absl::flat_hash_map<Key, uint64_t> totals_;
};

}  // namespace vigil
