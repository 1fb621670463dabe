#include "agent/agent.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <algorithm>
#include <utility>
#include <vector>

#include "agent/metrics/exposition.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vigil {
namespace {

uint64_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t CpuNs() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto ns = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1000000000ull +
           static_cast<uint64_t>(tv.tv_usec) * 1000ull;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

void FillLoss(const SyscallLossCounts& c, uint64_t store_dropped, v1::SyscallLoss* out) {
  out->set_map_full(c.map_full);
  out->set_no_enter(c.no_enter);
  out->set_storage_fail(c.storage_fail);
  out->set_nr_out_of_range(c.nr_out_of_range);
  out->set_store_dropped(store_dropped);
}

}  // namespace

Agent::Agent(const AgentConfig& config)
    : config_(config),
      started_(absl::Now()),
      hostname_([] {
        char host[256] = {};
        gethostname(host, sizeof(host) - 1);
        return std::string(host);
      }()),
      syscall_window_(config.window, config.store_max_records),
      syscall_series_(config.metrics_max_processes),
      udp_window_(config.window, config.store_max_records),
      udp_series_(kMaxUdpDropSeries),
      profile_window_(config.window, config.profile_store_max_records),
      alerts_(config.spin.history, config.spin.max_streams, config.spin.stream_queue) {}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config) {
  if (config.interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("interval must be at least 10ms");
  }
  if (config.window < config.interval) {
    return absl::InvalidArgumentError("window must be at least one interval");
  }
  std::unique_ptr<Agent> agent(new Agent(config));
  absl::StatusOr<std::unique_ptr<SyscallsCollector>> sc = SyscallsCollector::Create(config.syscalls);
  {
    absl::MutexLock lock(&agent->collect_mu_);
    if (sc.ok()) {
      agent->syscalls_ = *std::move(sc);
      agent->capabilities_.push_back({"syscalls", "running", ""});
    } else {
      agent->capabilities_.push_back({"syscalls", "off", std::string(sc.status().message())});
    }
    agent->CreateProfiler();
    agent->CreateSpin();
    agent->last_collect_ = absl::Now();
  }
  absl::StatusOr<std::unique_ptr<UdpDropsCollector>> ud = UdpDropsCollector::Create(config.udpdrops);
  {
    absl::MutexLock lock(&agent->collect_mu_);
    if (ud.ok()) {
      agent->drop_reasons_ = (*ud)->reasons();
      const std::string& why = (*ud)->degraded();
      agent->capabilities_.push_back({"udpdrops", why.empty() ? "running" : "degraded", why});
      agent->udpdrops_ = *std::move(ud);
    } else {
      agent->capabilities_.push_back({"udpdrops", "off", std::string(ud.status().message())});
    }
  }
  bool any = false;
  for (const CapabilityState& c : agent->capabilities_) any |= c.state != "off";
  if (!any) {
    // Nothing loaded: the first capability's reason is the one to fix first
    // (they usually share it, e.g. missing privileges).
    return absl::Status(sc.status().code(), sc.status().message());
  }
  return agent;
}

Agent::~Agent() { Stop(); }

void Agent::Start() { thread_ = std::thread([this] { Loop(); }); }

void Agent::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Agent::Loop() {
  absl::Time next = absl::Now() + config_.interval;
  while (!stop_.WaitForNotificationWithTimeout(next - absl::Now())) {
    if (stall_.load()) {
      fprintf(stderr, "vigild: collection loop stalled on purpose (test hook)\n");
      stop_.WaitForNotification();
      return;
    }
    CollectOnce();
    if (config_.heartbeat) config_.heartbeat();
    next += config_.interval;
    // After a stall (suspend, overload), skip missed ticks instead of
    // bursting; the interval's start/end stamps keep the data honest.
    const absl::Time now = absl::Now();
    if (next < now) next = now + config_.interval;
  }
}

void Agent::CollectOnce() {
  absl::MutexLock collect_lock(&collect_mu_);
  const absl::Time start = last_collect_;
  const absl::Time end = absl::Now();
  last_collect_ = end;
  CollectUdpDrops(start, end);
  CollectProfile(start, end);
  if (syscalls_ != nullptr) {
    // The spin detector reads this interval's syscalls and profile.
    const bool syscalls_ok = CollectSyscalls(start, end);
    CollectSpin(start, end, syscalls_ok);
  }
  const absl::Duration took = absl::Now() - end;
  absl::MutexLock lock(&store_mu_);
  ++polls_;
  poll_time_total_ += took;
  last_poll_ = took;
}

bool Agent::CollectSyscalls(absl::Time start, absl::Time end) {
  absl::StatusOr<SyscallInterval> iv = syscalls_->Collect();
  absl::MutexLock lock(&store_mu_);
  if (!iv.ok()) {
    // Keep what is stored; report the error in Status and try again next
    // interval.
    last_error_ = std::string(iv.status().message());
    fprintf(stderr, "vigild: %s\n", last_error_.c_str());
    return false;
  }
  last_error_.clear();
  syscall_loss_total_ += iv->loss;
  syscall_series_.Add(*iv);
  syscalls_fill_ = static_cast<double>(iv->records.size()) / config_.syscalls.max_entries;
  syscall_window_.Add(start, end, *std::move(iv));
  return true;
}

void Agent::CollectUdpDrops(absl::Time start, absl::Time end) {
  if (udpdrops_ == nullptr) return;
  absl::StatusOr<UdpDropInterval> iv = udpdrops_->Collect(end);
  absl::MutexLock lock(&store_mu_);
  if (!iv.ok()) {
    last_error_ = std::string(iv.status().message());
    fprintf(stderr, "vigild: %s\n", last_error_.c_str());
    return;
  }
  udp_loss_total_ += iv->loss;
  udp_series_.Add(*iv, drop_reasons_);
  udp_window_.Add(start, end, *std::move(iv));
}

absl::Status Agent::ResolveRange(const v1::TimeRange& range, absl::Time now, absl::Time* from,
                                 absl::Time* to) const {
  const absl::Duration since = absl::Nanoseconds(range.since_ago_ns());
  const absl::Duration until = absl::Nanoseconds(range.until_ago_ns());
  if (since > config_.window) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range: since ", absl::FormatDuration(since), " ago is outside the agent's ",
        absl::FormatDuration(config_.window), " window"));
  }
  if (until > config_.window) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range: until ", absl::FormatDuration(until), " ago is outside the agent's ",
        absl::FormatDuration(config_.window), " window"));
  }
  *from = range.since_ago_ns() == 0 ? absl::InfinitePast() : now - since;
  *to = now - until;
  return absl::OkStatus();
}

Agent::QuerySlot::QuerySlot(const Agent* a) : a_(a) {
  absl::MutexLock lock(&a_->query_slots_mu_);
  a_->query_slots_mu_.Await(
      absl::Condition(+[](int* slots) { return *slots > 0; }, &a_->query_slots_));
  --a_->query_slots_;
}

Agent::QuerySlot::~QuerySlot() {
  absl::MutexLock lock(&a_->query_slots_mu_);
  ++a_->query_slots_;
}

absl::StatusOr<v1::SyscallsResponse> Agent::QuerySyscalls(const v1::SyscallsRequest& req) const {
  absl::StatusOr<SyscallQuery> q = ValidateSyscallsRequest(req);
  if (!q.ok()) return q.status();
  const QuerySlot slot(this);
  absl::Time from, to;
  if (absl::Status s = ResolveRange(req.range(), absl::Now(), &from, &to); !s.ok()) return s;

  v1::SyscallsResponse resp;
  SyscallMerger merger(*q);
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  uint32_t intervals = 0;
  uint64_t store_dropped = 0;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    syscall_window_.ForEachOverlapping(from, to, [&](const auto& iv) {
      merger.Add(iv.data);
      first = std::min(first, iv.start);
      last = std::max(last, iv.end);
      ++intervals;
    });
    store_dropped = syscall_window_.dropped_records();
    // The second pass (histograms of the rows that made the cut) reads the
    // same intervals, so it runs under the same lock.
    merger.Finish(&resp);
  }
  resp.set_latency_measured(config_.syscalls.measure_latency);
  resp.set_hostname(hostname_);
  resp.mutable_loss()->set_store_dropped(store_dropped);
  if (intervals > 0) {
    resp.mutable_covered()->set_start_unix_ns(absl::ToUnixNanos(first));
    resp.mutable_covered()->set_end_unix_ns(absl::ToUnixNanos(last));
  }
  resp.mutable_covered()->set_intervals(intervals);
  return resp;
}

absl::StatusOr<v1::DropsResponse> Agent::QueryDrops(const v1::DropsRequest& req) const {
  absl::StatusOr<DropsQuery> q = ValidateDropsRequest(req, drop_reasons_);
  if (!q.ok()) return q.status();
  absl::Time from, to;
  if (absl::Status s = ResolveRange(req.range(), absl::Now(), &from, &to); !s.ok()) return s;
  const QuerySlot slot(this);  // merges are bounded in number (memory)

  v1::DropsResponse resp;
  DropsMerger merger(*q, drop_reasons_);
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  uint32_t intervals = 0;
  uint64_t store_dropped = 0;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    udp_window_.ForEachOverlapping(from, to, [&](const auto& iv) {
      merger.Add(iv.data, iv.end);
      first = std::min(first, iv.start);
      last = std::max(last, iv.end);
      ++intervals;
    });
    store_dropped = udp_window_.dropped_records();
  }
  merger.Finish(intervals > 0 ? absl::ToDoubleSeconds(last - first) : 0.0, &resp);
  resp.set_reasons_known(!drop_reasons_.empty());
  resp.mutable_loss()->set_store_dropped(store_dropped);
  if (intervals > 0) {
    resp.mutable_covered()->set_start_unix_ns(absl::ToUnixNanos(first));
    resp.mutable_covered()->set_end_unix_ns(absl::ToUnixNanos(last));
  }
  resp.mutable_covered()->set_intervals(intervals);
  return resp;
}

v1::StatusResponse Agent::Status() const {
  v1::StatusResponse s;
  s.set_version(VIGIL_VERSION);
  s.set_hostname(hostname_);
  s.set_start_unix_ns(absl::ToUnixNanos(started_));
  s.set_interval_ns(absl::ToInt64Nanoseconds(config_.interval));
  s.set_window_ns(absl::ToInt64Nanoseconds(config_.window));
  for (const CapabilityState& c : capabilities_) {
    v1::Capability* out = s.add_capabilities();
    out->set_name(c.name);
    out->set_state(c.state);
    out->set_reason(c.reason);
  }
  {
    absl::ReaderMutexLock lock(&store_mu_);
    if (!syscall_window_.empty()) {
      s.set_oldest_unix_ns(absl::ToUnixNanos(syscall_window_.oldest_start()));
    }
    s.set_intervals_retained(static_cast<uint32_t>(syscall_window_.size()));
    FillLoss(syscall_loss_total_, syscall_window_.dropped_records(), s.mutable_syscall_loss());
    v1::UdpDropLoss* ul = s.mutable_udpdrop_loss();
    ul->set_map_full(udp_loss_total_.map_full);
    ul->set_bad_header(udp_loss_total_.bad_header);
    ul->set_owner_cache_full(udp_loss_total_.owner_cache_full);
    ul->set_store_dropped(udp_window_.dropped_records());
    if (!last_error_.empty()) s.set_last_error(last_error_);
    if (profiler_on_) {
      *s.mutable_profiler() = profiler_status_;
      profile_loss_total_.ToProto(profile_window_.dropped_records(),
                                  s.mutable_profiler()->mutable_loss());
      s.mutable_profiler()->set_samples(profile_loss_total_.samples);
      s.mutable_profiler()->set_intervals_retained(static_cast<uint32_t>(profile_window_.size()));
      s.mutable_profiler()->set_records_retained(profile_window_.records());
    }
  }
  s.set_rss_bytes(RssBytes());
  s.set_cpu_ns(CpuNs());
  return s;
}

}  // namespace vigil

namespace vigil {

void Agent::RecordRpc(const std::string& method, int code) const {
  absl::MutexLock lock(&rpc_mu_);
  ++rpc_counts_[{method, code}];
}

std::string Agent::RenderMetrics() const {
  Exposition e;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    syscall_series_.Render(&e);
    e.Family("vigil_metrics_series_overflow", "gauge",
             "Process names summed into comm=\"other\" because metrics-max-processes was reached.");
    e.Sample("vigil_metrics_series_overflow", syscall_series_.overflowed());

    e.Family("vigil_lost_events_total", "counter",
             "Events the agent could not record, by capability and cause.");
    const SyscallLossCounts& l = syscall_loss_total_;
    e.Sample("vigil_lost_events_total", {{"capability", "syscalls"}, {"cause", "map_full"}}, l.map_full);
    e.Sample("vigil_lost_events_total", {{"capability", "syscalls"}, {"cause", "storage_fail"}}, l.storage_fail);
    e.Sample("vigil_lost_events_total", {{"capability", "syscalls"}, {"cause", "no_enter"}}, l.no_enter);
    e.Sample("vigil_lost_events_total", {{"capability", "syscalls"}, {"cause", "nr_out_of_range"}},
             l.nr_out_of_range);
    e.Sample("vigil_lost_events_total", {{"capability", "store"}, {"cause", "window_cap"}},
             syscall_window_.dropped_records());

    e.Sample("vigil_lost_events_total", {{"capability", "udpdrops"}, {"cause", "map_full"}},
             udp_loss_total_.map_full);
    e.Sample("vigil_lost_events_total", {{"capability", "udpdrops"}, {"cause", "bad_header"}},
             udp_loss_total_.bad_header);
    e.Sample("vigil_lost_events_total", {{"capability", "udpdrops"}, {"cause", "owner_cache_full"}},
             udp_loss_total_.owner_cache_full);
    const ProfileLossCounts& pl = profile_loss_total_;
    for (const auto& [cause, n] : std::vector<std::pair<const char*, uint64_t>>{
             {"map_full", pl.map_full},
             {"user_stack_collision", pl.user_collisions},
             {"kernel_stack_collision", pl.kernel_collisions},
             {"stack_map_full", pl.stack_map_full},
             {"no_buffer", pl.no_buffer},
             {"window_cap", profile_window_.dropped_records()}}) {
      e.Sample("vigil_lost_events_total", {{"capability", "profile"}, {"cause", cause}},
               static_cast<double>(n));
    }
    e.Family("vigil_profile_samples_total", "counter",
             "CPU samples the profiler took, by whether the CPU was idle.");
    e.Sample("vigil_profile_samples_total", {{"cpu_state", "busy"}},
             static_cast<double>(pl.samples - std::min(pl.samples, pl.idle)));
    e.Sample("vigil_profile_samples_total", {{"cpu_state", "idle"}}, static_cast<double>(pl.idle));
    udp_series_.Render(&e);

    e.Family("vigil_map_fill_ratio", "gauge",
             "Entries used in the last interval over a BPF map's max_entries.");
    e.Sample("vigil_map_fill_ratio", {{"map", "syscalls_stats"}}, syscalls_fill_);

    e.Family("vigil_poll_duration_seconds", "gauge", "Duration of the last collection.");
    e.Sample("vigil_poll_duration_seconds", absl::ToDoubleSeconds(last_poll_));
    e.Family("vigil_poll_seconds_total", "counter", "Time spent collecting, since start.");
    e.Sample("vigil_poll_seconds_total", absl::ToDoubleSeconds(poll_time_total_));
    e.Family("vigil_polls_total", "counter", "Collections since start.");
    e.Sample("vigil_polls_total", static_cast<double>(polls_));
    e.Family("vigil_store_records", "gauge", "Records held in the time-window store.");
    e.Sample("vigil_store_records", syscall_window_.records());
  }
  e.Family("vigil_capability_up", "gauge", "1 if a capability is collecting, 0 if off.");
  for (const CapabilityState& c : capabilities_) {
    e.Sample("vigil_capability_up", {{"capability", c.name}}, c.state == "off" ? 0 : 1);
  }
  e.Family("vigil_agent_cpu_seconds_total", "counter", "CPU time (user + system) used by vigild.");
  e.Sample("vigil_agent_cpu_seconds_total", CpuNs() / 1e9);
  e.Family("vigil_agent_resident_memory_bytes", "gauge", "Resident set size of vigild.");
  e.Sample("vigil_agent_resident_memory_bytes", static_cast<double>(RssBytes()));
  e.Family("vigil_agent_start_time_seconds", "gauge", "When vigild started, Unix time.");
  e.Sample("vigil_agent_start_time_seconds", absl::ToUnixSeconds(started_));
  e.Family("vigil_grpc_requests_total", "counter", "gRPC requests answered, by method and code.");
  {
    absl::MutexLock lock(&rpc_mu_);
    std::vector<std::pair<std::pair<std::string, int>, uint64_t>> rows(rpc_counts_.begin(),
                                                                       rpc_counts_.end());
    std::sort(rows.begin(), rows.end());
    for (const auto& [k, n] : rows) {
      e.Sample("vigil_grpc_requests_total",
               {{"method", k.first},
                {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(k.second))}},
               static_cast<double>(n));
    }
  }
  return e.text() + RenderSpinMetrics();
}

}  // namespace vigil
