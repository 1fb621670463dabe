// Everything vigild can be told, with its defaults. Flags are parsed only in
// main.cc; libraries and tests build this struct directly.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "agent/profile/profile_collector.h"
#include "agent/syscalls/syscalls_collector.h"

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
};

struct AgentConfig {
  // How often collectors are drained into the store.
  absl::Duration interval = absl::Seconds(1);
  // How much history the store keeps.
  absl::Duration window = absl::Minutes(10);
  // Cap on records held by the store across the window (memory bound);
  // the oldest intervals are evicted first and counted.
  size_t store_max_records = 100000;
  SyscallsConfig syscalls;
  ProfileConfig profile;
  // Cap on distinct (thread, stack) records the store keeps across the
  // window for the profiler (~150 bytes each with 20 frames); oldest
  // intervals are evicted first and counted. A 2-CPU host at 49 Hz makes at
  // most ~59k in 10 minutes.
  size_t profile_store_max_records = 100000;
  ListenConfig listen;
  bool verbose = false;
};

}  // namespace vigil
