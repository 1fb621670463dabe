// vigil trace: every syscall of chosen threads with decoded arguments, on
// demand (the `strace -f -p` view). Nothing is attached until a client starts
// a session; each session loads its own programs (filters in the kernel,
// events through a ring buffer) and unloads them when it ends.
#pragma once

#include <atomic>

#include "agent/ondemand/ondemand_capability.h"

namespace vigil {

class TraceCapability final : public OnDemandCapability {
 public:
  using OnDemandCapability::OnDemandCapability;

  static constexpr char kName[] = "trace";
  VIGIL_ONDEMAND_CAPABILITY_OVERRIDES();

  // One session: validates the request (INVALID_ARGUMENT with one line),
  // takes a slot, loads and attaches, streams events, and detaches. Returns
  // when the duration ends, the process exits, the client leaves or the
  // agent stops; the last message written says which.
  absl::Status Run(const SessionPeer& who, const v1::TraceRequest& req,
                   const SessionSink<v1::TraceMessage>& sink) const;

 private:
  // Since start, over every session (status and metrics).
  mutable std::atomic<uint64_t> sessions_run_{0};
  mutable std::atomic<uint64_t> events_{0};
  mutable std::atomic<uint64_t> rate_limited_{0};
  mutable std::atomic<uint64_t> ring_full_{0};
};

}  // namespace vigil
