// One capability (syscalls, udpdrops, profile, spin, ...) is one module:
// a folder agent/<cap>/ with its collector, aggregation, query, metrics and
// <cap>_config.h, and one class implementing this interface. The Agent only
// loops over what is registered (agent/capabilities.cc).
//
// Lifecycle, driven by the Agent:
//   Init      configure -> load -> attach; register store tables. An error
//             switches the capability off with that reason; the agent runs
//             on without it (one missing kernel feature never fails it).
//   Collect   once per interval, on the collection thread only: drain the
//             kernel side and append the interval to the store.
//   Stop      detach; release every kernel object (also done on destruction).
// Everything else is read-only and safe from any thread: the status block,
// losses and metric series, read from what Collect published.
//
// This header is also the kit a capability's own header builds on: it
// brings what every capability class declares with (the overrides' types,
// unique_ptr for its collector, absl::Mutex and its annotations for what
// Collect publishes, StatusOr for its queries).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/alerts/alert_stream.h"
#include "agent/metrics/exposition.h"
#include "agent/ondemand/session_limiter.h"
#include "agent/store/window_store.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

enum class CapabilityState { kOff, kOn, kDegraded };

v1::CapabilityState ToProto(CapabilityState s);

class Capability;

// What Init may use: the store to register tables in, the agent's alert
// stream to publish into (collection thread), and the capabilities
// registered before this one (spin reads the syscalls and profile tables).
struct InitContext {
  WindowStore* store;
  AlertStream* alerts;
  std::vector<const Capability*> earlier;
  std::string hostname;
  // The bound on-demand sessions (trace, probe) share.
  SessionLimiter* sessions = nullptr;
  // A capability by name among the earlier ones, or nullptr if absent/off.
  const Capability* Find(const std::string& name) const;
  // The earlier capability of class T (named T::kName), or nullptr.
  template <typename T>
  const T* Get() const {
    return dynamic_cast<const T*>(Find(T::kName));
  }
};

// One interval to collect.
struct IntervalSpan {
  absl::Time start;
  absl::Time end;
};

class Capability {
 public:
  virtual ~Capability() = default;

  virtual const char* name() const = 0;
  // Configure, load, attach. Called once. A non-OK status turns the
  // capability off with that message as its reason.
  virtual absl::Status Init(const InitContext& ctx) = 0;
  // Collection thread only. A failure is kept (last_error) and retried next
  // interval; what is stored stays.
  virtual absl::Status Collect(const IntervalSpan& span, StoreWriter& store) = 0;
  // Detaches; idempotent.
  virtual void Stop() {}

  // kOn, or kDegraded with a reason, after a successful Init.
  CapabilityState state() const {
    return degraded_.empty() ? CapabilityState::kOn : CapabilityState::kDegraded;
  }
  const std::string& degraded_reason() const { return degraded_; }
  // Init refused because the configuration switched it off (not a failure:
  // nothing to page anyone about).
  bool disabled() const { return disabled_; }

  // Its part of GetStatus (loss counters, retained data, ...).
  virtual void FillStatus(const StoreView& store, v1::StatusResponse* out) const = 0;
  // Its metric families. Loss counters go to vigil_lost_events_total via
  // AddLosses so one family lists every capability's.
  virtual void RenderMetrics(const StoreView& store, Exposition* out) const = 0;
  // (cause, count) pairs for vigil_lost_events_total{capability=name()}.
  virtual std::vector<std::pair<std::string, uint64_t>> Losses(const StoreView& store) const = 0;

 protected:
  // Init's answer when the configuration turns the capability off: `flag`
  // is the setting, e.g. "--spin off".
  absl::Status Disabled(const char* flag) {
    disabled_ = true;
    return absl::FailedPreconditionError(std::string("disabled (vigild ") + flag + ")");
  }
  // Init only (before any other thread reads state()): the capability runs
  // without part of what it does, for this reason ("" adds nothing).
  void AddDegraded(const std::string& reason) {
    if (reason.empty()) return;
    degraded_ += degraded_.empty() ? reason : "; " + reason;
  }

 private:
  std::string degraded_;
  bool disabled_ = false;
};

// Declares, inside a capability's class, the Capability overrides every
// module implements (each documented above), so the interface is written
// once rather than copied into each header. The class defines
// `static constexpr char kName[]` before it.
#define VIGIL_CAPABILITY_OVERRIDES()                                           \
  absl::Status Collect(const IntervalSpan& span, StoreWriter& store) override; \
  void Stop() override;                                                        \
  VIGIL_ONDEMAND_CAPABILITY_OVERRIDES()

// The same but Collect and Stop, for an OnDemandCapability
// (agent/ondemand/ondemand_capability.h).
#define VIGIL_ONDEMAND_CAPABILITY_OVERRIDES()                                      \
  const char* name() const override { return kName; }                              \
  absl::Status Init(const InitContext& ctx) override;                              \
  void FillStatus(const StoreView& store, v1::StatusResponse* out) const override; \
  void RenderMetrics(const StoreView& store, Exposition* out) const override;      \
  std::vector<std::pair<std::string, uint64_t>> Losses(const StoreView& store) const override

// A capability's loss totals since start (a LossCounts T), behind a lock of
// their own: Collect adds each interval's, any thread reads them.
template <typename T>
class LossTotal {
 public:
  void Add(const T& interval) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    total_ += interval;
  }
  T Get() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return total_;
  }
  // Losses()'s answer for a capability with one store table: every cause,
  // then `more`, then the table's evictions as window_cap.
  template <typename I>
  std::vector<std::pair<std::string, uint64_t>> Named(
      const StoreView& store, Table<I> table,
      std::initializer_list<std::pair<const char*, uint64_t>> more = {}) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::pair<std::string, uint64_t>> out = Get().Named(more);
    out.emplace_back("window_cap", store.DroppedRecords(table));
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  T total_ ABSL_GUARDED_BY(mu_);
};

// Copies Losses()'s (cause, count) pairs into the uint64 fields of the
// same name in a capability's loss message (SyscallLoss, CpuLoss, ...), so
// each counter is listed once, in Losses, for both GetStatus and
// vigil_lost_events_total. "window_cap" is the message's store_dropped;
// causes without a field (metric-only ones) are skipped.
void LossesToProto(const std::vector<std::pair<std::string, uint64_t>>& losses,
                   google::protobuf::Message* out);

}  // namespace vigil
