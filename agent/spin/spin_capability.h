// The spin capability: threads burning a CPU without making syscalls. It
// has no BPF of its own: once per interval it reads what the syscalls and
// profile capabilities just stored (so it registers after them), and its
// alerts go to the log and the agent's alert stream (agent/alerts/).
#pragma once

#include <atomic>

#include "agent/alerts/alert_stream.h"
#include "agent/capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_config.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_signal.h"
#include "agent/syscalls/syscalls_capability.h"

namespace vigil {

class SpinCapability final : public Capability {
 public:
  explicit SpinCapability(const SpinConfig& config);

  static constexpr char kName[] = "spin";
  VIGIL_CAPABILITY_OVERRIDES();

  // Threads not tracked because the detector's table was full (for
  // ListAlerts).
  uint64_t tracking_overflow() const { return tracking_overflow_.load(std::memory_order_relaxed); }

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
  AlertStream* alerts_ = nullptr;  // the agent's, set by Init
  std::atomic<uint64_t> tracking_overflow_{0};
};

}  // namespace vigil
