#include "agent/alerts/alert_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_line.h"

namespace vigil {
namespace {

constexpr uint32_t kMaxRecentAlerts = 100000;

}  // namespace

absl::StatusOr<std::unique_ptr<AlertStream>> AlertStream::Create(const AlertsConfig& config) {
  if (config.history == 0 || config.max_streams == 0 || config.stream_queue == 0 ||
      config.on_alert_queue == 0) {
    return absl::InvalidArgumentError(
        "alerts: history, max_streams, stream_queue and on_alert_queue must be > 0");
  }
  return std::unique_ptr<AlertStream>(new AlertStream(config));
}

AlertStream::AlertStream(const AlertsConfig& config)
    : book_(config.history, config.max_streams, config.stream_queue) {
  if (!config.on_alert.empty()) {
    on_alert_ = std::make_unique<OnAlertRunner>(config.on_alert, config.on_alert_timeout,
                                                config.on_alert_queue);
  }
}

void AlertStream::Publish(const v1::SpinAlert& a) {
  book_.Publish(a);
  if (on_alert_ != nullptr) on_alert_->Enqueue(JsonLine(a));
}

absl::StatusOr<v1::ListAlertsResponse> AlertStream::List(const v1::ListAlertsRequest& req) const {
  if (req.recent() > kMaxRecentAlerts) {
    return absl::InvalidArgumentError(
        absl::StrCat("recent ", req.recent(), ": at most ", kMaxRecentAlerts));
  }
  v1::ListAlertsResponse resp;
  for (v1::SpinAlert& a : book_.List(req.recent())) *resp.add_alerts() = std::move(a);
  resp.set_fired_total(book_.counters().fired_total);
  return resp;
}

void AlertStream::RenderMetrics(Exposition* e) const {
  book_.RenderFiring(e);
  const AlertCounters a = book_.counters();
  const OnAlertCounters o = on_alert_ ? on_alert_->counters() : OnAlertCounters{};
  e->Gauge("vigil_alert_streams", "Open WatchAlerts streams (vigil alerts --follow).", a.streams);
  e->Counter("vigil_alert_streams_rejected_total", "WatchAlerts streams refused at the stream cap.",
             a.streams_rejected);
  e->Counter("vigil_alert_streams_dropped_total",
             "WatchAlerts streams ended because the client read too slowly.", a.streams_overflowed);
  e->Counter("vigil_on_alert_runs_total", "on-alert commands started.", o.runs);
  e->Counter("vigil_on_alert_failures_total",
             "on-alert commands that could not start or exited non-zero.", o.failures);
  e->Counter("vigil_on_alert_timeouts_total", "on-alert commands killed after the timeout.",
             o.timeouts);
  e->Counter("vigil_on_alert_dropped_total",
             "Alert events not given to on-alert because its queue was full.", o.dropped);
}

}  // namespace vigil
