// Settings of the one alert stream every detector publishes into, with
// their defaults.
#pragma once

#include <cstddef>
#include <string>

#include "absl/time/time.h"

namespace vigil {

struct AlertsConfig {
  // Shell command run with each alert event's JSON on stdin (on-alert).
  // Empty: none.
  std::string on_alert;
  // The command is killed after this long (on-alert-timeout).
  absl::Duration on_alert_timeout = absl::Seconds(5);
  // Events waiting for the command; more are dropped and counted.
  size_t on_alert_queue = 64;
  // Resolved alerts kept for `vigil alerts`.
  size_t history = 256;
  // Concurrent WatchAlerts streams.
  size_t max_streams = 16;
  // Events buffered per stream; a slower reader loses the stream.
  size_t stream_queue = 256;
};

}  // namespace vigil
