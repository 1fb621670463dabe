#include "agent/metrics/udpdrop_series.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vigil {

void UdpDropSeries::Add(const UdpDropInterval& interval, const DropReasonTable& reasons) {
  for (const UdpDropRecord& r : interval.records) {
    Key k{reasons.Name(r.key.reason), absl::StrCat(r.key.port), absl::StrCat(r.key.netns)};
    auto it = totals_.find(k);
    if (it == totals_.end()) {
      if (admitted_ < max_series_) {
        ++admitted_;
      } else {
        overflowed_ += r.stats.count;
        std::get<1>(k) = "other";
        std::get<2>(k) = "other";
      }
      it = totals_.try_emplace(k, 0).first;
    }
    it->second += r.stats.count;
  }
}

void UdpDropSeries::Render(Exposition* out) const {
  std::vector<std::pair<Key, uint64_t>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end());
  out->Family("vigil_udp_drops_total", "counter",
              "UDP packets the kernel dropped, by drop reason, local port and network namespace "
              "inode (first N label sets, then port=\"other\").");
  for (const auto& [k, n] : rows) {
    out->Sample({{"reason", std::get<0>(k)}, {"port", std::get<1>(k)}, {"netns", std::get<2>(k)}},
                static_cast<double>(n));
  }
}

}  // namespace vigil
