// The spin capability: threads burning a CPU without making syscalls. It
// has no BPF of its own: once per interval it reads what the syscalls and
// profile capabilities just stored (so it registers after them), and its
// alerts go to the log, the alert book (ListAlerts / WatchAlerts / metrics)
// and the on-alert command.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/alert_book.h"
#include "agent/spin/on_alert.h"
#include "agent/spin/spin_config.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_signal.h"
#include "agent/syscalls/syscalls_capability.h"

namespace vigil {

class SpinCapability final : public Capability {
 public:
  explicit SpinCapability(const SpinConfig& config);

  const char* name() const override { return "spin"; }
  absl::Status Init(const InitContext& ctx) override;
  absl::Status Collect(const IntervalSpan& span, StoreWriter& store) override;
  void Stop() override;
  void FillStatus(const StoreView&, v1::StatusResponse*) const override {}
  void RenderMetrics(const StoreView& store, Exposition* out) const override;
  std::vector<std::pair<std::string, uint64_t>> Losses(const StoreView&) const override {
    return {};
  }

  // INVALID_ARGUMENT for recent above 100000.
  absl::StatusOr<v1::ListAlertsResponse> ListAlerts(const v1::ListAlertsRequest& req) const;
  // RESOURCE_EXHAUSTED at the stream cap.
  absl::StatusOr<std::shared_ptr<AlertSubscription>> WatchAlerts(bool include_active) const {
    return alerts_.Subscribe(include_active);
  }
  void EndWatch(const std::shared_ptr<AlertSubscription>& s) const { alerts_.Unsubscribe(s); }
  // Ends every WatchAlerts stream (before the gRPC server shuts down).
  void CloseAlertStreams() const { alerts_.CloseAll(); }

  // The one alert stream other capabilities' alerts go through (memory
  // growth): the alert book, WatchAlerts and the on-alert command. Their
  // ids must not collide with spin's (spin's count up from 1). Collection
  // thread only.
  void PublishAlert(const v1::SpinAlert& a) const;
  // The firing alert with this id, if any.
  bool ActiveAlert(uint64_t id, v1::SpinAlert* out) const { return alerts_.Active(id, out); }

 private:
  v1::SpinAlert MakeAlert(const SpinEvent& e, absl::Time now);

  const SpinConfig config_;
  std::string hostname_;
  // Set by Init: the capabilities it reads, and the store to read them in.
  const SyscallsCapability* syscalls_ = nullptr;
  const ProfileCapability* profile_ = nullptr;
  std::unique_ptr<StoreView> store_;
  // Collection thread only.
  std::unique_ptr<SpinDetector> detector_;
  std::unique_ptr<SpinSignal> signal_;
  std::unique_ptr<OnAlertRunner> on_alert_;  // set once in Init
  // Internally synchronized; mutable so const gRPC paths can subscribe.
  mutable AlertBook alerts_;
  std::atomic<uint64_t> tracking_overflow_{0};
};

}  // namespace vigil
