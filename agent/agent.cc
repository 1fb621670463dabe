#include "agent/agent.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <utility>

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
      syscall_window_(config.window, config.store_max_records),
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
  bool any = false;
  for (const CapabilityState& c : agent->capabilities_) any |= c.state != "off";
  if (!any) {
    // The first capability's reason is the reason.
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
    CollectOnce();
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
  CollectProfile(start, end);
  if (syscalls_ == nullptr) return;
  absl::StatusOr<SyscallInterval> iv = syscalls_->Collect();
  {
    absl::MutexLock lock(&store_mu_);
    if (!iv.ok()) {
      // Keep what is stored; report the error in Status and try again next
      // interval.
      last_error_ = std::string(iv.status().message());
      fprintf(stderr, "vigild: %s\n", last_error_.c_str());
    } else {
      last_error_.clear();
      syscall_loss_total_ += iv->loss;
      syscall_window_.Add(start, end, *std::move(iv));
    }
  }
  CollectSpin(start, end, iv.ok());
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

absl::StatusOr<v1::SyscallsResponse> Agent::QuerySyscalls(const v1::SyscallsRequest& req) const {
  absl::StatusOr<SyscallQuery> q = ValidateSyscallsRequest(req);
  if (!q.ok()) return q.status();
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
  }
  merger.Finish(&resp);
  resp.set_latency_measured(config_.syscalls.measure_latency);
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
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  s.set_hostname(host);
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
    if (!last_error_.empty()) s.set_last_error(last_error_);
    if (profiler_on_) {
      *s.mutable_profiler() = profiler_status_;
      profile_loss_total_.ToProto(profile_window_.dropped_records(),
                                  s.mutable_profiler()->mutable_loss());
      s.mutable_profiler()->set_samples(profile_loss_total_.samples);
    }
  }
  s.set_rss_bytes(RssBytes());
  s.set_cpu_ns(CpuNs());
  return s;
}

}  // namespace vigil
