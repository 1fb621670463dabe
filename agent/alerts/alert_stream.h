// The agent's one alert stream. Detectors (spin, memory growth) publish
// into it from the collection thread; `vigil alerts` (ListAlerts),
// `--follow` (WatchAlerts), the on-alert command and the stream's metrics
// read it. It belongs to the Agent, not to a detector, so each detector
// runs without the others.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/alerts/alert_book.h"
#include "agent/alerts/alerts_config.h"
#include "agent/alerts/on_alert.h"
#include "agent/metrics/exposition.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

class AlertStream {
 public:
  // INVALID_ARGUMENT for a zero bound.
  static absl::StatusOr<std::unique_ptr<AlertStream>> Create(const AlertsConfig& config);

  // Collection thread: one event, to the book, every stream and the
  // on-alert command (which never blocks it). Ids must be unique across
  // detectors: spin counts up from 1, memory growth sets bit 62.
  void Publish(const v1::SpinAlert& a);
  // The firing alert with this id, if any.
  bool Active(uint64_t id, v1::SpinAlert* out) const { return book_.Active(id, out); }

  // ListAlerts without the detectors' own fields; INVALID_ARGUMENT for
  // recent above 100000.
  absl::StatusOr<v1::ListAlertsResponse> List(const v1::ListAlertsRequest& req) const;
  // RESOURCE_EXHAUSTED at the stream cap.
  absl::StatusOr<std::shared_ptr<AlertSubscription>> Watch(bool include_active) {
    return book_.Subscribe(include_active);
  }
  void EndWatch(const std::shared_ptr<AlertSubscription>& s) { book_.Unsubscribe(s); }
  // Ends every WatchAlerts stream (before the gRPC server shuts down) and
  // refuses new ones.
  void CloseAll() { book_.CloseAll(); }

  AlertCounters counters(v1::AlertKind kind) const { return book_.counters(kind); }
  // The stream's own series: one per firing alert (labelled), open streams,
  // and the on-alert command's runs.
  void RenderMetrics(Exposition* out) const;

 private:
  explicit AlertStream(const AlertsConfig& config);

  AlertBook book_;
  std::unique_ptr<OnAlertRunner> on_alert_;  // set once; null without on-alert
};

}  // namespace vigil
