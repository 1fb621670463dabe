#include "agent/memory/growth_detector.h"

#include <algorithm>

#include "agent/memory/linear_fit.h"

namespace vigil {

void GrowthDetector::Rises(const std::deque<Point>& p, absl::Time from, uint32_t* rising,
                           uint32_t* n) {
  *rising = *n = 0;
  for (size_t i = 1; i < p.size(); ++i) {
    if (p[i - 1].at < from) continue;
    ++*n;
    if (p[i].rss > p[i - 1].rss) ++*rising;
  }
}

double GrowthDetector::Slope(const std::deque<Point>& p, absl::Time from) {
  LinearFit fit;
  for (const Point& x : p) {
    if (x.at >= from) fit.Add(absl::ToDoubleSeconds(x.at - from), static_cast<double>(x.rss));
  }
  return fit.Slope();
}

absl::Duration GrowthDetector::ResolveAfter(const Track& t) const {
  absl::Duration after = c_.resolve_after;
  if (after == absl::ZeroDuration()) after = c_.min_duration / 4;
  if (t.points.size() >= 2) {
    after = std::max(after, 3 * (t.points.back().at - t.points[t.points.size() - 2].at));
  }
  return after;
}

size_t GrowthDetector::firing() const {
  size_t n = 0;
  for (const auto& [pid, t] : tracks_) n += t.alert_id != 0;
  return n;
}

std::vector<GrowthEvent> GrowthDetector::Observe(absl::Time now,
                                                 const std::vector<GrowthSample>& samples) {
  std::vector<GrowthEvent> out;
  if (!c_.enabled) return out;
  for (const GrowthSample& s : samples) {
    auto it = tracks_.find(s.pid);
    if (it != tracks_.end() && it->second.start_ns != s.start_ns) {
      // The pid was reused: the old process exited.
      if (it->second.alert_id != 0) {
        GrowthEvent e;
        e.kind = GrowthEvent::kResolved;
        e.id = it->second.alert_id;
        e.pid = s.pid;
        e.start_ns = it->second.start_ns;
        e.reason = "process exited";
        out.push_back(e);
      }
      tracks_.erase(it);
      it = tracks_.end();
    }
    if (it == tracks_.end()) {
      if (tracks_.size() >= c_.max_tracked) {
        ++overflow_;
        continue;
      }
      it = tracks_.emplace(s.pid, Track{}).first;
      it->second.start_ns = s.start_ns;
    }
    Track& t = it->second;
    t.seen = now;
    t.points.push_back(Point{now, s.rss_bytes});
    // Keep one point before the window: the first interval's rise.
    while (t.points.size() > 2 && t.points[1].at <= now - c_.min_duration) t.points.pop_front();
    if (t.points.size() > 100000) t.points.pop_front();  // a bound whatever the interval

    const absl::Time from = now - c_.min_duration;
    if (t.alert_id == 0) {
      // Observed for the whole window, not just since it appeared.
      if (t.points.front().at > from) continue;
      uint32_t rising = 0, n = 0;
      Rises(t.points, from, &rising, &n);
      const uint64_t first = t.points.front().rss;
      // "Most intervals" needs a few intervals (a min_duration shorter than
      // three never fires).
      if (n < 3 || rising <= c_.rising_share * n || s.rss_bytes < first + c_.min_bytes) continue;
      // The trend too, not only the ends: a sawtooth (fill a buffer over a
      // few intervals, drop it) rises in most intervals and can end on a
      // peak, but its least-squares slope over the window is near zero.
      const double rate = Slope(t.points, t.points.front().at);
      if (rate * absl::ToDoubleSeconds(c_.min_duration) < static_cast<double>(c_.min_bytes)) {
        continue;
      }
      // And still rising now: what just resolved does not fire again on
      // the same window.
      uint32_t recent_rising = 0, recent_n = 0;
      Rises(t.points, now - ResolveAfter(t), &recent_rising, &recent_n);
      if (recent_n > 0 && recent_rising <= c_.rising_share * recent_n) continue;
      t.alert_id = next_id_++;
      GrowthEvent e;
      e.kind = GrowthEvent::kFired;
      e.id = t.alert_id;
      e.pid = s.pid;
      e.start_ns = s.start_ns;
      e.since = t.points.front().at;
      e.rate_bytes_per_s = rate;
      e.rss_bytes = s.rss_bytes;
      e.rss_start_bytes = first;
      e.rising = rising;
      e.intervals = n;
      out.push_back(e);
    } else {
      const absl::Duration after = ResolveAfter(t);
      uint32_t rising = 0, n = 0;
      Rises(t.points, now - after, &rising, &n);
      if (n >= 3 && rising <= c_.rising_share * n) {
        GrowthEvent e;
        e.kind = GrowthEvent::kResolved;
        e.id = t.alert_id;
        e.pid = s.pid;
        e.start_ns = s.start_ns;
        e.rss_bytes = s.rss_bytes;
        e.rate_bytes_per_s = Slope(t.points, now - after);
        e.reason = "growth stopped";
        out.push_back(e);
        t.alert_id = 0;
      }
    }
  }
  // Processes not in this interval exited (or were cut by the memory
  // capability's max_processes: counted there as processes_over_cap).
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    if (it->second.seen == now) {
      ++it;
      continue;
    }
    if (it->second.alert_id != 0) {
      GrowthEvent e;
      e.kind = GrowthEvent::kResolved;
      e.id = it->second.alert_id;
      e.pid = it->first;
      e.start_ns = it->second.start_ns;
      e.reason = "process exited";
      out.push_back(e);
    }
    tracks_.erase(it++);
  }
  return out;
}

}  // namespace vigil
