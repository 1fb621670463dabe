#include "agent/spin/spin_detector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/regex.h"

namespace vigil {

absl::Status ValidateSpinConfig(const SpinConfig& c) {
  if (!(c.cpu_threshold > 0 && c.cpu_threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("spin-cpu-threshold ", c.cpu_threshold,
                                                   ": expected a fraction of one CPU in (0, 1]"));
  }
  if (c.min_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("spin-min-duration: expected a positive duration");
  }
  for (const auto& [key, re] :
       {std::pair<const char*, const std::string*>{"spin-ignore-comm", &c.ignore_comm},
        {"spin-ignore-cgroup", &c.ignore_cgroup}}) {
    if (re->empty()) continue;
    if (absl::StatusOr<std::unique_ptr<RE2>> compiled = CompilePattern(*re, key); !compiled.ok()) {
      return compiled.status();
    }
  }
  if (c.max_tracked == 0) {
    return absl::InvalidArgumentError("spin: max_tracked must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SpinDetector>> SpinDetector::Create(const SpinConfig& config) {
  if (absl::Status s = ValidateSpinConfig(config); !s.ok()) return s;
  std::unique_ptr<SpinDetector> d(new SpinDetector(config));
  RE2::Options o;
  o.set_log_errors(false);
  if (!config.ignore_comm.empty()) d->ignore_comm_ = std::make_unique<RE2>(config.ignore_comm, o);
  if (!config.ignore_cgroup.empty())
    d->ignore_cgroup_ = std::make_unique<RE2>(config.ignore_cgroup, o);
  return d;
}

bool SpinDetector::Ignored(const SpinObservation& o) const {
  if (ignore_comm_ &&
      (RE2::PartialMatch(o.comm, *ignore_comm_) || RE2::PartialMatch(o.pcomm, *ignore_comm_))) {
    return true;
  }
  return ignore_cgroup_ && !o.cgroup.empty() && RE2::PartialMatch(o.cgroup, *ignore_cgroup_);
}

SpinEvent SpinDetector::MakeEvent(SpinEventKind kind, uint32_t tid, const Track& t,
                                  absl::Time end) const {
  SpinEvent e;
  e.kind = kind;
  e.id = t.id;
  e.pid = t.pid;
  e.tid = tid;
  e.comm = t.comm;
  e.pcomm = t.pcomm;
  e.cgroup = t.cgroup;
  e.start = t.start;
  e.duration = end - t.start;
  const double wall = absl::ToDoubleNanoseconds(t.wall);
  e.cpu_share = wall > 0 ? std::min(1.0, static_cast<double>(t.oncpu_ns) / wall) : 0;
  return e;
}

std::vector<SpinEvent> SpinDetector::Observe(absl::Time start, absl::Time end,
                                             const std::vector<SpinObservation>& obs) {
  std::vector<SpinEvent> fired, resolved;
  const absl::Duration wall = end - start;
  const double wall_ns = absl::ToDoubleNanoseconds(wall);
  absl::flat_hash_map<uint32_t, bool> seen;
  for (const SpinObservation& o : obs) {
    seen[o.tid] = true;
    if (!o.known || wall_ns <= 0) continue;  // hold: neither grow nor break
    const double share = static_cast<double>(o.oncpu_ns) / wall_ns;
    const bool spinning = share >= config_.cpu_threshold && o.syscalls == 0 &&
                          o.voluntary_switches == 0 && !o.in_kernel;
    auto it = tracks_.find(o.tid);
    if (it == tracks_.end()) {
      if (!spinning) continue;
      if (Ignored(o)) {
        ++ignored_total_;
        continue;
      }
      if (tracks_.size() >= config_.max_tracked) {
        ++tracking_overflow_;
        continue;
      }
      Track t;
      t.pid = o.pid;
      t.start = start;
      it = tracks_.emplace(o.tid, std::move(t)).first;
    } else if (!spinning) {
      if (it->second.firing) {
        SpinEvent e = MakeEvent(SpinEventKind::kResolved, o.tid, it->second, start);
        e.reason = o.syscalls > 0             ? "syscall"
                   : o.voluntary_switches > 0 ? "blocked"
                   : o.in_kernel              ? "syscall"
                                              : "idle";
        resolved.push_back(std::move(e));
        ++resolved_total_;
      }
      tracks_.erase(it);
      continue;
    }
    Track& t = it->second;
    t.oncpu_ns += o.oncpu_ns;
    t.wall += wall;
    if (!o.comm.empty()) t.comm = o.comm;
    if (!o.pcomm.empty()) t.pcomm = o.pcomm;
    if (!o.cgroup.empty()) t.cgroup = o.cgroup;
    if (!t.firing && end - t.start >= config_.min_duration) {
      t.firing = true;
      t.id = next_id_++;
      ++fired_total_;
      fired.push_back(MakeEvent(SpinEventKind::kFired, o.tid, t, end));
    }
  }
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second.firing) {
      SpinEvent e = MakeEvent(SpinEventKind::kResolved, it->first, it->second, start);
      e.reason = "exited";
      resolved.push_back(std::move(e));
      ++resolved_total_;
    }
    tracks_.erase(it++);
  }
  fired.insert(fired.end(), std::make_move_iterator(resolved.begin()),
               std::make_move_iterator(resolved.end()));
  return fired;
}

std::vector<std::pair<uint32_t, uint32_t>> SpinDetector::Tracked() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  out.reserve(tracks_.size());
  for (const auto& [tid, t] : tracks_) out.emplace_back(t.pid, tid);
  return out;
}

size_t SpinDetector::firing() const {
  size_t n = 0;
  for (const auto& [tid, t] : tracks_) n += t.firing;
  return n;
}

}  // namespace vigil
