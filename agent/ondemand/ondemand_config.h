// On-demand sessions: `vigil trace` (agent/trace) and `vigil probe`
// (agent/probe). Both attach programs only while a session runs, so they cost
// nothing when none does; both are off unless vigild is told otherwise,
// because they let a client point the root daemon at any process.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace vigil {

struct OnDemandConfig {
  // --allow-trace / allow-trace: serve the Trace RPC.
  bool allow_trace = false;
  // --allow-probe / allow-probe: serve the Probe RPC.
  bool allow_probe = false;
  // Sessions running at once, trace and probe together; one more is
  // RESOURCE_EXHAUSTED.
  int max_sessions = 4;
  // Longest session; a request for more is INVALID_ARGUMENT, a request for 0
  // gets this.
  absl::Duration max_duration = absl::Minutes(5);
  // Trace events per second per session the kernel passes on; the rest are
  // dropped in the kernel and counted (TraceLoss.rate_limited).
  uint32_t trace_max_events_per_second = 20000;
  // Functions one probe session may attach (a glob matching more is
  // INVALID_ARGUMENT).
  uint32_t probe_max_functions = 64;
  // Per probe session, the kernel tables' sizes; what does not fit is
  // counted (ProbeLoss), the per-function call counts stay exact.
  // (function, thread) pairs with their own count.
  uint32_t probe_thread_entries = 4096;
  // Distinct (function, argument position, value) triples counted.
  uint32_t probe_arg_entries = 8192;
  // Calls running at once whose entry time is kept for --latency.
  uint32_t probe_running_calls = 16384;
};

}  // namespace vigil
