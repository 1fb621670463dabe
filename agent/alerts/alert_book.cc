#include "agent/alerts/alert_book.h"

#include "absl/strings/str_cat.h"

namespace vigil {

bool AlertSubscription::Next(absl::Duration timeout, v1::SpinAlert* out) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_ || !queue_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool AlertSubscription::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_ && queue_.empty();
}

bool AlertSubscription::dead() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

void AlertSubscription::Push(const v1::SpinAlert& a) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (queue_.size() >= max_queue_) {
    // A reader this far behind would print stale alerts; end its stream.
    closed_ = true;
    return;
  }
  queue_.push_back(a);
}

void AlertSubscription::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void AlertBook::Publish(const v1::SpinAlert& a) {
  absl::MutexLock lock(&mu_);
  if (a.state() == v1::ALERT_STATE_FIRING) {
    active_[a.id()] = a;
    ++counters_.fired_total;
    ++by_kind_[a.kind()].fired_total;
  } else {
    active_.erase(a.id());
    resolved_.push_back(a);
    while (resolved_.size() > history_) resolved_.pop_front();
    ++counters_.resolved_total;
    ++by_kind_[a.kind()].resolved_total;
  }
  for (auto it = subs_.begin(); it != subs_.end();) {
    (*it)->Push(a);
    if ((*it)->dead()) {
      ++counters_.streams_overflowed;
      it = subs_.erase(it);
    } else {
      ++it;
    }
  }
}

bool AlertBook::Active(uint64_t id, v1::SpinAlert* out) const {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return false;
  *out = it->second;
  return true;
}

std::vector<v1::SpinAlert> AlertBook::List(uint32_t recent) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::SpinAlert> out;
  for (const auto& [id, a] : active_) out.push_back(a);
  size_t n = 0;
  for (auto it = resolved_.rbegin(); it != resolved_.rend(); ++it) {
    if (recent != 0 && n++ >= recent) break;
    out.push_back(*it);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<AlertSubscription>> AlertBook::Subscribe(bool include_active) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::UnavailableError("the agent is shutting down");
  if (subs_.size() >= max_streams_) {
    ++counters_.streams_rejected;
    return absl::ResourceExhaustedError(absl::StrCat("too many alert streams (the agent allows ",
                                                     max_streams_, "); try again later"));
  }
  auto s = std::make_shared<AlertSubscription>(stream_queue_);
  if (include_active) {
    for (const auto& [id, a] : active_) s->Push(a);
  }
  subs_.push_back(s);
  return s;
}

void AlertBook::Unsubscribe(const std::shared_ptr<AlertSubscription>& s) {
  absl::MutexLock lock(&mu_);
  for (auto it = subs_.begin(); it != subs_.end(); ++it) {
    if (*it == s) {
      subs_.erase(it);
      return;
    }
  }
}

void AlertBook::CloseAll() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (auto& s : subs_) s->Close();
  subs_.clear();
}

AlertCounters AlertBook::counters() const {
  absl::MutexLock lock(&mu_);
  AlertCounters c = counters_;
  c.firing = active_.size();
  c.streams = subs_.size();
  return c;
}

AlertCounters AlertBook::counters(v1::AlertKind kind) const {
  absl::MutexLock lock(&mu_);
  AlertCounters c = counters_;
  auto it = by_kind_.find(kind);
  c.fired_total = it == by_kind_.end() ? 0 : it->second.fired_total;
  c.resolved_total = it == by_kind_.end() ? 0 : it->second.resolved_total;
  c.firing = 0;
  for (const auto& [id, a] : active_) c.firing += a.kind() == kind;
  c.streams = subs_.size();
  return c;
}

void AlertBook::RenderFiring(Exposition* e) const {
  absl::MutexLock lock(&mu_);
  e->Family("vigil_spin_alert_info", "gauge",
            "1 per firing spin alert, labelled with its thread; gone once it resolves.");
  for (const auto& [id, a] : active_) {
    if (a.kind() == v1::ALERT_KIND_MEMORY_GROWTH) continue;
    e->Sample({{"id", absl::StrCat(id)},
               {"pid", absl::StrCat(a.pid())},
               {"tid", absl::StrCat(a.tid())},
               {"comm", a.comm()},
               {"process_comm", a.process_comm()}},
              1);
  }
  e->Family("vigil_memory_growth_alert_info", "gauge",
            "1 per firing memory-growth alert, labelled with its process; gone once it "
            "resolves.");
  for (const auto& [id, a] : active_) {
    if (a.kind() != v1::ALERT_KIND_MEMORY_GROWTH) continue;
    e->Sample({{"id", absl::StrCat(id)}, {"pid", absl::StrCat(a.pid())}, {"comm", a.comm()}}, 1);
  }
}

}  // namespace vigil
