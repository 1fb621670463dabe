// What the on-demand capabilities (trace, probe) share: a client drives
// them session by session, so nothing is collected per interval, and each
// session owns and releases every kernel object it loads, ending before the
// agent stops the capabilities (Agent::Stop ends sessions first). Collect
// and Stop have nothing to do.
#pragma once

#include "agent/capability.h"
#include "agent/ondemand/ondemand_config.h"
#include "agent/ondemand/session_limiter.h"

namespace vigil {

class OnDemandCapability : public Capability {
 public:
  explicit OnDemandCapability(const OnDemandConfig& config) : config_(config) {}

  absl::Status Collect(const IntervalSpan&, StoreWriter&) final { return absl::OkStatus(); }
  void Stop() final {}

 protected:
  // GetStatus's block, with the part both share filled in: the sessions'
  // bound and how many run now.
  v1::OnDemandStatus* FillSessions(v1::StatusResponse* out) const {
    v1::OnDemandStatus* s = out->mutable_ondemand();
    if (sessions_ == nullptr) return s;  // Init refused
    s->set_running(static_cast<uint32_t>(sessions_->running()));
    s->set_max_sessions(static_cast<uint32_t>(sessions_->max_sessions()));
    s->set_max_duration_ns(absl::ToInt64Nanoseconds(sessions_->max_duration()));
    return s;
  }

  const OnDemandConfig config_;
  SessionLimiter* sessions_ = nullptr;  // set by Init
};

}  // namespace vigil
