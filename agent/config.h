// Everything vigild can be told, with its defaults. Flags are parsed only in
// main.cc; libraries and tests build this struct directly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "agent/alerts/alerts_config.h"
#include "agent/cpu/cpu_config.h"
#include "agent/memory/memory_config.h"
#include "agent/metrics/metrics_server.h"
#include "agent/ondemand/ondemand_config.h"
#include "agent/profile/profile_config.h"
#include "agent/spin/spin_config.h"
#include "agent/syscalls/syscalls_config.h"
#include "agent/udpdrops/udpdrops_config.h"

namespace vigil {

struct ListenConfig {
  // "unix:/path" or "host:port".
  std::string address = "unix:/run/vigil/vigild.sock";
  // TLS for TCP listeners (all three required for TCP).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Allow a plaintext TCP listener (loopback only unless this is set).
  bool insecure = false;
  // Bounds on what clients can make the agent hold: gRPC handler threads
  // overall, and concurrent streams per connection. A request beyond them
  // waits or fails with RESOURCE_EXHAUSTED instead of growing the agent.
  int max_handler_threads = 64;
  int max_streams_per_connection = 32;
};

struct AgentConfig {
  // How often collectors are drained into the store.
  absl::Duration interval = absl::Seconds(1);
  // How much history the store keeps.
  absl::Duration window = absl::Minutes(10);
  // Cap on records held by the store across the window (memory bound);
  // the oldest intervals are evicted first and counted.
  size_t store_max_records = 100000;
  // Store merges (queries) running at once; more wait for a slot until their
  // deadline. Each allocates in proportion to the window it reads.
  int max_concurrent_merges = 4;
  // Identical queries over the same intervals share one merge; answers are
  // kept until the store next changes, this many bytes at most (0: off).
  size_t query_share_bytes = size_t{16} << 20;
  SyscallsConfig syscalls;
  UdpDropsConfig udpdrops;
  ProfileConfig profile;
  // Cap on distinct (thread, stack) records the store keeps across the
  // window for the profiler (~150 bytes each with 20 frames); oldest
  // intervals are evicted first and counted. A 2-CPU host at 49 Hz makes at
  // most ~59k in 10 minutes.
  size_t profile_store_max_records = 100000;
  // The same for page-fault stack records, in a table of their own so a
  // fault-heavy host keeps its CPU history (and the reverse). A host
  // first-touching memory flat out made ~550 records/s at period 64.
  size_t profile_fault_store_max_records = 50000;
  // Memory over time per process and cgroup, OOM kills.
  MemoryConfig memory;
  // Exact CPU per thread (vigil top).
  CpuConfig cpu;
  // Spin alerts (needs the syscalls and profile capabilities).
  SpinConfig spin;
  // The alert stream spin and memory-growth alerts share.
  AlertsConfig alerts;
  // vigil trace and vigil probe: off unless allowed, bounded when on.
  OnDemandConfig ondemand;
  ListenConfig listen;
  MetricsConfig metrics;
  // Prometheus series cardinality: process names with their own series (the
  // most recently seen; the least recently seen is evicted for a new one).
  size_t metrics_max_processes = 100;
  bool verbose = false;
  // Test hook: SIGUSR2 stalls the collection loop (so its heartbeat stops),
  // to prove that systemd's watchdog restarts a hung agent.
  bool test_stall_signal = false;
  // Called by the collection loop after every interval: the systemd watchdog
  // ping, when running under systemd. Empty: nothing.
  std::function<void()> heartbeat;
};

}  // namespace vigil
