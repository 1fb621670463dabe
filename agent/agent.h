// The agent: owns the collectors and the time-window store, drains the
// collectors once per interval, and answers queries from the store. gRPC
// handlers only read the store; nothing outside this class touches BPF maps.
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
#include "absl/container/flat_hash_map.h"
#include "agent/config.h"
#include "agent/metrics/syscall_series.h"
#include "agent/metrics/udpdrop_series.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/profile/profile_collector.h"
#include "agent/spin/alert_book.h"
#include "agent/spin/on_alert.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_signal.h"
#include "agent/store/window.h"
#include "agent/syscalls/syscalls_aggregate.h"
#include "agent/syscalls/syscalls_collector.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "agent/udpdrops/udpdrops_collector.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

struct CapabilityState {
  std::string name;
  std::string state;  // running | degraded | off
  std::string reason;
};

class Agent {
 public:
  // Loads and attaches every capability. A capability that cannot load is
  // reported as off with its reason; Create fails only if none loads.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config);
  ~Agent();

  // Starts the collection thread.
  void Start();
  // Stops it; idempotent. Collectors are torn down by the destructor.
  void Stop();

  // Test hook: the collection loop blocks until Stop(), as if hung.
  void StallForTesting() { stall_.store(true); }

  // Drains every collector into the store now (the collection thread calls
  // this once per interval; tests may call it directly).
  void CollectOnce();

  absl::StatusOr<v1::SyscallsResponse> QuerySyscalls(const v1::SyscallsRequest& req) const;
  absl::StatusOr<v1::DropsResponse> QueryDrops(const v1::DropsRequest& req) const;
  v1::StatusResponse Status() const;
  absl::StatusOr<v1::HotResponse> QueryHot(const v1::HotRequest& req) const;
  absl::StatusOr<v1::ProfileResponse> QueryProfile(const v1::ProfileRequest& req) const;

  // Prometheus exposition text for one scrape.
  std::string RenderMetrics() const;
  // Counts one answered RPC (for vigil_grpc_requests_total).
  void RecordRpc(const std::string& method, int code) const;
  // Spin alerts (agent_spin.cc).
  // INVALID_ARGUMENT for recent above 100000.
  absl::StatusOr<v1::ListAlertsResponse> ListAlerts(const v1::ListAlertsRequest& req) const;
  // RESOURCE_EXHAUSTED at the stream cap; FAILED_PRECONDITION when off.
  absl::StatusOr<std::shared_ptr<AlertSubscription>> WatchAlerts(bool include_active) const;
  void EndWatch(const std::shared_ptr<AlertSubscription>& s) const { alerts_.Unsubscribe(s); }
  // Ends every WatchAlerts stream (before the gRPC server shuts down).
  void CloseAlertStreams() const { alerts_.CloseAll(); }
  // Prometheus text for the spin capability (for the /metrics exporter).
  std::string RenderSpinMetrics() const;

  const AgentConfig& config() const { return config_; }

 private:
  explicit Agent(const AgentConfig& config);
  void Loop();
  void CollectUdpDrops(absl::Time start, absl::Time end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  // False if the collection failed (the error is in Status).
  bool CollectSyscalls(absl::Time start, absl::Time end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  // The profiler's part of Create and CollectOnce (agent_profile.cc).
  void CreateProfiler() ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  void CollectProfile(absl::Time start, absl::Time end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  // The spin detector's part (agent_spin.cc): runs after both collectors
  // stored the interval [start, end]; syscalls_ok is false if that failed.
  void CreateSpin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  void CollectSpin(absl::Time start, absl::Time end, bool syscalls_ok)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);
  v1::SpinAlert MakeAlert(const SpinEvent& e, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(collect_mu_);

  // Resolves a request's range against the window; INVALID_ARGUMENT if it
  // lies outside it.
  absl::Status ResolveRange(const v1::TimeRange& range, absl::Time now, absl::Time* from,
                            absl::Time* to) const;

  const AgentConfig config_;
  const absl::Time started_;
  const std::string hostname_;
  std::vector<CapabilityState> capabilities_;

  // Only the collection thread (or CollectOnce callers, serialized by
  // collect_mu_) touches collectors.
  absl::Mutex collect_mu_;
  std::unique_ptr<SyscallsCollector> syscalls_ ABSL_GUARDED_BY(collect_mu_);
  absl::Time last_collect_ ABSL_GUARDED_BY(collect_mu_);
  std::unique_ptr<UdpDropsCollector> udpdrops_ ABSL_GUARDED_BY(collect_mu_);
  // The running kernel's drop reason names; set once by Create.
  DropReasonTable drop_reasons_;

  // Merges allocate in proportion to the window; at most this many run at
  // once, the rest wait their turn, so a burst of clients cannot balloon
  // the agent's memory.
  static constexpr int kMaxConcurrentQueries = 4;
  mutable absl::Mutex query_slots_mu_;
  mutable int query_slots_ ABSL_GUARDED_BY(query_slots_mu_) = kMaxConcurrentQueries;
  // Holds one of the query slots for its lifetime (waits for one).
  class QuerySlot {
   public:
    explicit QuerySlot(const Agent* a);
    ~QuerySlot();
    QuerySlot(const QuerySlot&) = delete;
    QuerySlot& operator=(const QuerySlot&) = delete;

   private:
    const Agent* a_;
  };
  std::unique_ptr<ProfileCollector> profile_ ABSL_GUARDED_BY(collect_mu_);

  mutable absl::Mutex store_mu_;
  IntervalWindow<SyscallInterval> syscall_window_ ABSL_GUARDED_BY(store_mu_);
  SyscallLossCounts syscall_loss_total_ ABSL_GUARDED_BY(store_mu_);
  SyscallSeries syscall_series_ ABSL_GUARDED_BY(store_mu_);
  // Collection-loop health, for metrics.
  uint64_t polls_ ABSL_GUARDED_BY(store_mu_) = 0;
  absl::Duration poll_time_total_ ABSL_GUARDED_BY(store_mu_);
  absl::Duration last_poll_ ABSL_GUARDED_BY(store_mu_);
  double syscalls_fill_ ABSL_GUARDED_BY(store_mu_) = 0;  // last interval's records / max_entries

  mutable absl::Mutex rpc_mu_;
  mutable absl::flat_hash_map<std::pair<std::string, int>, uint64_t> rpc_counts_
      ABSL_GUARDED_BY(rpc_mu_);
  std::string last_error_ ABSL_GUARDED_BY(store_mu_);
  IntervalWindow<UdpDropInterval> udp_window_ ABSL_GUARDED_BY(store_mu_);
  UdpDropLossCounts udp_loss_total_ ABSL_GUARDED_BY(store_mu_);
  static constexpr size_t kMaxUdpDropSeries = 500;
  UdpDropSeries udp_series_ ABSL_GUARDED_BY(store_mu_);
  IntervalWindow<ProfileInterval> profile_window_ ABSL_GUARDED_BY(store_mu_);
  ProfileLossCounts profile_loss_total_ ABSL_GUARDED_BY(store_mu_);
  // Snapshot of the profiler's fixed facts and symbol-cache counters, so
  // Status never touches the collector.
  v1::ProfilerStatus profiler_status_ ABSL_GUARDED_BY(store_mu_);
  bool profiler_on_ = false;

  std::unique_ptr<SpinDetector> spin_detector_ ABSL_GUARDED_BY(collect_mu_);
  std::unique_ptr<SpinSignal> spin_signal_ ABSL_GUARDED_BY(collect_mu_);
  // Internally synchronized; mutable so const gRPC paths can subscribe.
  mutable AlertBook alerts_;
  std::unique_ptr<OnAlertRunner> on_alert_;  // set once in Create
  std::atomic<uint64_t> spin_tracking_overflow_{0};
  bool spin_on_ = false;  // set once in Create

  absl::Notification stop_;
  std::atomic<bool> stall_{false};
  std::thread thread_;
};

}  // namespace vigil
