// Alerts of every kind (spin, memory growth) as the agent keeps and hands
// them out: the firing ones, a bounded history of resolved ones, and
// bounded per-stream queues for WatchAlerts. Thread-safe; the collection
// thread publishes, gRPC handlers read and subscribe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/metrics/exposition.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

class AlertSubscription {
 public:
  explicit AlertSubscription(size_t max_queue) : max_queue_(max_queue) {}
  // Waits up to `timeout` for the next event. False on timeout or once
  // closed (then closed() is true).
  bool Next(absl::Duration timeout, v1::SpinAlert* out);
  bool closed() const;

 private:
  friend class AlertBook;
  void Push(const v1::SpinAlert& a);
  void Close();
  // Closed (overflowed), even if events are still queued for the reader.
  bool dead() const;

  const size_t max_queue_;
  mutable absl::Mutex mu_;
  std::deque<v1::SpinAlert> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Per kind (fired, resolved, firing) or for the whole book (streams).
struct AlertCounters {
  uint64_t fired_total = 0;
  uint64_t resolved_total = 0;
  uint64_t firing = 0;
  uint64_t streams = 0;
  uint64_t streams_rejected = 0;
  uint64_t streams_overflowed = 0;  // dropped for reading too slowly
};

class AlertBook {
 public:
  AlertBook(size_t history, size_t max_streams, size_t stream_queue)
      : history_(history), max_streams_(max_streams), stream_queue_(stream_queue) {}

  // A firing event adds to the active set; a resolved one moves the alert
  // (same id) to the history. Every subscriber gets the event.
  void Publish(const v1::SpinAlert& a);
  // The firing alert with this id, if any.
  bool Active(uint64_t id, v1::SpinAlert* out) const;
  // Firing alerts oldest first, then at most `recent` (0: all) resolved
  // ones newest first.
  std::vector<v1::SpinAlert> List(uint32_t recent) const;
  // RESOURCE_EXHAUSTED at the stream cap. With include_active, the firing
  // alerts are queued first.
  absl::StatusOr<std::shared_ptr<AlertSubscription>> Subscribe(bool include_active);
  // Called by a stream handler when it ends.
  void Unsubscribe(const std::shared_ptr<AlertSubscription>& s);
  // Closes every subscription (shutdown); later Subscribe calls fail.
  void CloseAll();
  // Fired, resolved and firing of every kind, or of one kind.
  AlertCounters counters() const;
  AlertCounters counters(v1::AlertKind kind) const;
  // One series per firing alert, labelled with what a page needs to name
  // (pid, tid, comm), so Prometheus alerts can say which thread or process:
  // vigil_spin_alert_info and vigil_memory_growth_alert_info. Bounded by
  // the detectors' tracking tables; a series ends when its alert resolves.
  void RenderFiring(Exposition* e) const;

 private:
  const size_t history_, max_streams_, stream_queue_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, v1::SpinAlert> active_ ABSL_GUARDED_BY(mu_);  // by id
  std::deque<v1::SpinAlert> resolved_ ABSL_GUARDED_BY(mu_);        // newest last
  std::vector<std::shared_ptr<AlertSubscription>> subs_ ABSL_GUARDED_BY(mu_);
  AlertCounters counters_ ABSL_GUARDED_BY(mu_);
  // fired_total and resolved_total per kind (a handful of kinds).
  std::map<v1::AlertKind, AlertCounters> by_kind_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vigil
