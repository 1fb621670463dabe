// vigil probe: uprobes, uretprobes and USDT probes on a running process, on
// demand (dtrace's pid provider, bcc's funccount/funclatency). Nothing is
// attached until a client starts a session; each session loads its own
// skeleton (bpf/probe.bpf.c), attaches its links and destroys both when it
// ends. --stacks attaches the profiler's uprobe program (bpf/profile.bpf.c
// vigil_profile_probe), which walks stacks with the profiler's unwind tables.
#pragma once

#include <atomic>

#include "agent/ondemand/ondemand_capability.h"

namespace vigil {

class ProfileCapability;

class ProbeCapability final : public OnDemandCapability {
 public:
  using OnDemandCapability::OnDemandCapability;

  static constexpr char kName[] = "probe";
  VIGIL_ONDEMAND_CAPABILITY_OVERRIDES();

  // One session: validates the request (INVALID_ARGUMENT with one line),
  // takes a slot, attaches, writes a report every second and a last one
  // (ended = true), detaches. Returns when the duration ends, the process
  // exits, the client leaves or the agent stops.
  absl::Status Run(const SessionPeer& who, const v1::ProbeRequest& req,
                   const SessionSink<v1::ProbeReport>& sink) const;

  // Totals since start (tests, status).
  uint64_t sessions_run() const { return sessions_run_.load(); }
  uint64_t calls_total() const { return calls_.load(); }

 private:
  // The profiler, for --stacks; nullptr when it is off.
  const ProfileCapability* profile_ = nullptr;
  // Since start, over every session (status, metrics, losses).
  mutable std::atomic<uint32_t> next_session_{1};
  mutable std::atomic<uint64_t> sessions_run_{0};
  mutable std::atomic<uint64_t> calls_{0};
  mutable std::atomic<uint64_t> threads_dropped_{0};
  mutable std::atomic<uint64_t> args_dropped_{0};
  mutable std::atomic<uint64_t> stacks_dropped_{0};
  mutable std::atomic<uint64_t> untimed_{0};
};

}  // namespace vigil
