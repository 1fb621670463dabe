// The agent: a loop over the registered capabilities plus the store. Once
// per interval each capability collects into the store; gRPC handlers, the
// metrics exporter and detectors read it through a StoreView. Which
// capabilities exist, in which order, is agent/capabilities.cc.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/capability.h"
#include "agent/collect_worker.h"
#include "agent/config.h"
#include "agent/metrics/pprof_http.h"
#include "agent/store/window_store.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

// The capabilities vigild runs, in collection order (agent/capabilities.cc).
std::vector<std::unique_ptr<Capability>> RegisteredCapabilities(const AgentConfig& config);

class Agent {
 public:
  // Initializes every registered capability. One that cannot load is
  // reported as off with its reason; Create fails only if none loads.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(
      const AgentConfig& config, std::vector<std::unique_ptr<Capability>> capabilities);
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config) {
    return Create(config, RegisteredCapabilities(config));
  }
  ~Agent();

  // Starts the collection thread.
  void Start();
  // Stops it and every capability; idempotent.
  void Stop();

  // Test hook: the collection loop blocks until Stop(), as if hung.
  void StallForTesting() { stall_.store(true); }

  // Collects one interval from every capability now (the collection thread
  // calls this once per interval; tests may call it directly).
  void CollectOnce();

  // What handlers and exporters read.
  StoreView store() const { return store_.view(); }
  // The capability of class T (named T::kName) if it is on, else nullptr:
  // the handlers' way to its queries (whose const methods read only the
  // store and what Collect published). The Agent knows no capability class.
  template <typename T>
  const T* Get() const {
    return dynamic_cast<const T*>(Find(T::kName));
  }
  // Why a registered capability is off or degraded ("" when running or
  // unknown).
  std::string CapabilityReason(const std::string& name) const;
  // Every capability's loss counters since start: (capability, cause, count).
  std::vector<v1::TopLoss> AllLosses() const;
  // vigild's resident set, in bytes.
  uint64_t RssBytes() const;
  const std::string& hostname() const { return hostname_; }

  v1::StatusResponse Status() const;
  // Prometheus exposition text for one scrape.
  std::string RenderMetrics() const;
  // /debug/pprof over the profiler's queries; the Agent must outlive it.
  std::unique_ptr<const PprofEndpoints> Pprof() const;
  // Counts one answered RPC (for vigil_grpc_requests_total).
  void RecordRpc(const std::string& method, int code) const;
  // Ends every WatchAlerts stream (before the gRPC server shuts down).
  void CloseAlertStreams() const;
  // Ends every trace and probe session and waits (up to a few seconds) for
  // them to detach, before the gRPC server shuts down.
  void EndSessions() const;
  // The alert stream every detector publishes into (ListAlerts,
  // WatchAlerts). Its methods are thread-safe.
  AlertStream& alerts() const { return *alerts_; }

  const AgentConfig& config() const { return config_; }

 private:
  struct Slot {
    std::unique_ptr<Capability> cap;
    CapabilityState state = CapabilityState::kOff;
    std::string reason;
    // Runs cap's Collect (capabilities that are on); see collect_worker.h.
    std::unique_ptr<CollectWorker> worker;
    // Where this capability's next interval starts: its own, so one that
    // was stuck collects the whole time it missed.
    absl::Time next_start;
    // Stop found its Collect still stuck: never destroyed (see ~Agent).
    bool abandoned = false;
  };
  // A capability's state as reported: degraded while its Collect is stuck.
  CapabilityState ReportedState(size_t i, std::string* reason) const;
  bool Stuck(size_t i) const;
  // Records (or clears, with InfiniteFuture) that slot i's Collect has not
  // returned since `since`, logging the change.
  void ReportStuck(size_t i, absl::Time since);
  explicit Agent(const AgentConfig& config);
  void Loop();
  const Capability* Find(const std::string& name) const;

  const AgentConfig config_;
  const absl::Time started_;
  const std::string hostname_;
  WindowStore store_;
  // Set once by Create; before the capabilities, which publish into it,
  // and destroyed after them.
  std::unique_ptr<AlertStream> alerts_;
  // Shared by the on-demand capabilities; outlives them.
  std::unique_ptr<SessionLimiter> sessions_;
  // Fixed after Create; Collect runs on the collection thread only
  // (serialized by collect_mu_ with CollectOnce callers).
  std::vector<Slot> caps_;
  absl::Mutex collect_mu_;

  // Collection-loop health, for status and metrics.
  mutable absl::Mutex health_mu_;
  uint64_t polls_ ABSL_GUARDED_BY(health_mu_) = 0;
  absl::Duration poll_time_total_ ABSL_GUARDED_BY(health_mu_);
  absl::Duration last_poll_ ABSL_GUARDED_BY(health_mu_);
  std::string last_error_ ABSL_GUARDED_BY(health_mu_);
  // Per slot: since when its Collect has not returned (InfiniteFuture: it
  // has).
  std::vector<absl::Time> stuck_since_ ABSL_GUARDED_BY(health_mu_);

  mutable absl::Mutex rpc_mu_;
  mutable absl::flat_hash_map<std::pair<std::string, int>, uint64_t> rpc_counts_
      ABSL_GUARDED_BY(rpc_mu_);

  absl::Notification stop_;
  std::atomic<bool> stall_{false};
  std::thread thread_;
};

}  // namespace vigil
