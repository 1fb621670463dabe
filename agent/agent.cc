#include "agent/agent.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/cpu/cpu_capability.h"
#include "agent/memory/memory_capability.h"
#include "agent/metrics/exposition.h"
#include "agent/probe/probe_capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/trace/trace_capability.h"
#include "agent/udpdrops/udpdrops_capability.h"

namespace vigil {
namespace {

uint64_t ReadRssBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// mallinfo2 walks every arena under its lock: microseconds for the agent's
// few arenas, once per status or scrape.
struct HeapBytes {
  uint64_t in_use = 0, free = 0;
};
HeapBytes ReadHeap() {
  const struct mallinfo2 m = mallinfo2();
  return {m.uordblks + m.hblkhd, m.fordblks};
}

// glibc keeps what the agent frees: freed chunks below an arena's top stay
// resident, and the top is trimmed only past a threshold that grows after
// each large free. Under query load (50 clients merging megabytes each),
// a peak left RSS stepped up by 5-7 MB for tens of seconds and then down,
// which looks like a leak in any window. malloc_trim(0) hands every free
// page of every arena back, so RSS follows what is in use.
void ReturnFreedHeap() {
  constexpr size_t kWorthIt = 4 << 20;
  if (mallinfo2().fordblks < kWorthIt) return;
  malloc_trim(0);
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

std::string Hostname() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return std::string(host);
}

}  // namespace

Agent::Agent(const AgentConfig& config)
    : config_(config),
      started_(absl::Now()),
      hostname_(Hostname()),
      store_(StoreConfig{config.window, config.max_concurrent_merges,
                         SharedAnswers::Config{config.query_share_bytes}}) {}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(
    const AgentConfig& config, std::vector<std::unique_ptr<Capability>> capabilities) {
  if (config.interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("interval must be at least 10ms");
  }
  if (config.window < config.interval) {
    return absl::InvalidArgumentError("window must be at least one interval");
  }
  absl::StatusOr<std::unique_ptr<AlertStream>> alerts = AlertStream::Create(config.alerts);
  if (!alerts.ok()) return alerts.status();
  std::unique_ptr<Agent> agent(new Agent(config));
  agent->alerts_ = *std::move(alerts);
  agent->sessions_ =
      std::make_unique<SessionLimiter>(config.ondemand.max_sessions, config.ondemand.max_duration);
  InitContext ctx{
      &agent->store_, agent->alerts_.get(), {}, agent->hostname_, agent->sessions_.get()};
  absl::Status first_error;
  for (std::unique_ptr<Capability>& cap : capabilities) {
    Slot slot;
    absl::Status s = cap->Init(ctx);
    if (s.ok()) {
      slot.state = cap->state();
      slot.reason = cap->degraded_reason();
      ctx.earlier.push_back(cap.get());
    } else {
      slot.state = CapabilityState::kOff;
      slot.reason = std::string(s.message());
      cap->Stop();
      if (first_error.ok()) first_error = s;
    }
    slot.cap = std::move(cap);
    agent->caps_.push_back(std::move(slot));
  }
  if (ctx.earlier.empty()) {
    // Nothing loaded: the first capability's reason is the one to fix first
    // (they usually share it, e.g. missing privileges).
    return first_error;
  }
  const absl::Time now = absl::Now();
  for (Slot& slot : agent->caps_) {
    if (slot.state == CapabilityState::kOff) continue;
    slot.worker = std::make_unique<CollectWorker>(slot.cap.get(), agent->store_.writer());
    slot.next_start = now;
  }
  absl::MutexLock lock(&agent->health_mu_);
  agent->stuck_since_.assign(agent->caps_.size(), absl::InfiniteFuture());
  return agent;
}

Agent::~Agent() {
  Stop();
  for (Slot& s : caps_) {
    if (!s.abandoned) continue;
    (void)s.worker.release();
    (void)s.cap.release();
  }
}

void Agent::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Agent::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  // Sessions still streaming hold the on-demand capabilities' programs.
  if (sessions_) EndSessions();
  for (Slot& s : caps_) {
    if (s.worker != nullptr && !s.worker->Stop(absl::Seconds(2))) {
      // Its Collect sleeps in the kernel and may wake at any time: the
      // capability is left as it is (never destroyed) and the kernel
      // detaches its programs when the process exits.
      fprintf(stderr, "vigild: %s: collection still stuck at shutdown; exiting without it\n",
              s.cap->name());
      s.abandoned = true;
      continue;
    }
    s.worker.reset();
    if (!s.abandoned) s.cap->Stop();
  }
}

void Agent::Loop() {
  absl::Time next = absl::Now() + config_.interval;
  absl::Time next_trim = absl::Now();
  while (!stop_.WaitForNotificationWithTimeout(next - absl::Now())) {
    if (stall_.load()) {
      fprintf(stderr, "vigild: collection loop stalled on purpose (test hook)\n");
      stop_.WaitForNotification();
      return;
    }
    CollectOnce();
    if (absl::Now() >= next_trim) {
      ReturnFreedHeap();
      next_trim = absl::Now() + absl::Seconds(5);
    }
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
  // One end for every capability's interval: spin pairs the syscalls and
  // profile intervals by their exact span.
  const absl::Time start = absl::Now();
  // How long the loop waits for one capability before going on without it:
  // a Collect takes milliseconds; one that blocks this long is asleep in the
  // kernel, and the others must not wait for it.
  const absl::Duration patience = std::max(absl::Seconds(2), 2 * config_.interval);
  std::string error;
  for (size_t i = 0; i < caps_.size(); ++i) {
    Slot& s = caps_[i];
    if (s.worker == nullptr) continue;
    const IntervalSpan span{s.next_start, start};
    if (!s.worker->Start(span)) continue;  // still stuck in an earlier Collect
    ReportStuck(i, absl::InfiniteFuture());
    absl::Status st;
    if (!s.worker->Wait(absl::Now() + patience, &st)) {
      ReportStuck(i, s.worker->busy_since());
      s.next_start = span.end;
      continue;
    }
    s.next_start = span.end;
    // A failed interval keeps what is stored; it is reported in Status and
    // tried again next interval.
    if (!st.ok()) {
      error = absl::StrCat(s.cap->name(), ": ", st.message());
      fprintf(stderr, "vigild: %s\n", error.c_str());
    }
  }
  const absl::Duration took = absl::Now() - start;
  absl::MutexLock lock(&health_mu_);
  ++polls_;
  poll_time_total_ += took;
  last_poll_ = took;
  last_error_ = error;
}

void Agent::ReportStuck(size_t i, absl::Time since) {
  absl::MutexLock lock(&health_mu_);
  const bool was = stuck_since_[i] != absl::InfiniteFuture();
  const bool is = since != absl::InfiniteFuture();
  if (is && !was) {
    fprintf(stderr,
            "vigild: %s: collection has not returned after %s (asleep in the kernel?); the "
            "other capabilities go on without it\n",
            caps_[i].cap->name(), absl::FormatDuration(absl::Now() - since).c_str());
  } else if (was && !is) {
    fprintf(stderr, "vigild: %s: collection returned after %s stuck\n", caps_[i].cap->name(),
            absl::FormatDuration(absl::Now() - stuck_since_[i]).c_str());
  }
  stuck_since_[i] = since;
}

bool Agent::Stuck(size_t i) const {
  absl::MutexLock lock(&health_mu_);
  return stuck_since_[i] != absl::InfiniteFuture();
}

CapabilityState Agent::ReportedState(size_t i, std::string* reason) const {
  const Slot& s = caps_[i];
  *reason = s.reason;
  if (s.state == CapabilityState::kOff) return s.state;
  absl::MutexLock lock(&health_mu_);
  if (stuck_since_[i] == absl::InfiniteFuture()) return s.state;
  const std::string stuck = absl::StrCat(
      "collection stuck for ",
      absl::FormatDuration(absl::Trunc(absl::Now() - stuck_since_[i], absl::Seconds(1))),
      " (asleep in the kernel: a hung mount or process?); the others go on");
  *reason = reason->empty() ? stuck : absl::StrCat(stuck, "; ", *reason);
  return CapabilityState::kDegraded;
}

const Capability* Agent::Find(const std::string& name) const {
  for (const Slot& s : caps_) {
    if (s.state != CapabilityState::kOff && name == s.cap->name()) return s.cap.get();
  }
  return nullptr;
}

std::string Agent::CapabilityReason(const std::string& name) const {
  for (size_t i = 0; i < caps_.size(); ++i) {
    if (name != caps_[i].cap->name()) continue;
    std::string reason;
    ReportedState(i, &reason);
    return reason;
  }
  return "";
}

std::vector<v1::TopLoss> Agent::AllLosses() const {
  const StoreView view = store();
  std::vector<v1::TopLoss> out;
  for (const Slot& c : caps_) {
    if (c.state == CapabilityState::kOff) continue;
    for (const auto& [cause, n] : c.cap->Losses(view)) {
      v1::TopLoss& l = out.emplace_back();
      l.set_capability(c.cap->name());
      l.set_cause(cause);
      l.set_count(n);
    }
  }
  return out;
}

uint64_t Agent::RssBytes() const { return ReadRssBytes(); }

void Agent::CloseAlertStreams() const { alerts_->CloseAll(); }

void Agent::EndSessions() const { sessions_->Shutdown(absl::Seconds(3)); }

v1::StatusResponse Agent::Status() const {
  v1::StatusResponse s;
  s.set_version(VIGIL_VERSION);
  s.set_hostname(hostname_);
  s.set_start_unix_ns(absl::ToUnixNanos(started_));
  s.set_interval_ns(absl::ToInt64Nanoseconds(config_.interval));
  s.set_window_ns(absl::ToInt64Nanoseconds(config_.window));
  const StoreView view = store();
  for (size_t i = 0; i < caps_.size(); ++i) {
    const Slot& c = caps_[i];
    v1::Capability* out = s.add_capabilities();
    out->set_name(c.cap->name());
    std::string reason;
    out->set_state(ToProto(ReportedState(i, &reason)));
    out->set_reason(reason);
    if (c.state != CapabilityState::kOff) c.cap->FillStatus(view, &s);
  }
  {
    absl::MutexLock lock(&health_mu_);
    if (!last_error_.empty()) s.set_last_error(last_error_);
  }
  s.set_rss_bytes(ReadRssBytes());
  const HeapBytes heap = ReadHeap();
  s.set_heap_in_use_bytes(heap.in_use);
  s.set_heap_free_bytes(heap.free);
  s.set_cpu_ns(CpuNs());
  return s;
}

void Agent::RecordRpc(const std::string& method, int code) const {
  absl::MutexLock lock(&rpc_mu_);
  ++rpc_counts_[{method, code}];
}

std::unique_ptr<const PprofEndpoints> Agent::Pprof() const {
  const ProfileCapability* profile = Get<ProfileCapability>();
  auto offered = [profile](v1::ProfileKind kind) {
    return profile == nullptr ? absl::FailedPreconditionError(
                                    "the profiler is off on this agent (see vigil status)")
                              : profile->CheckKind(kind);
  };
  auto source = [profile, offered, view = store()](
                    const v1::ProfileRequest& req) -> absl::StatusOr<v1::ProfileResponse> {
    if (profile == nullptr) return offered(req.kind());
    // The merge is bounded by the window; allow what an RPC without a
    // deadline of its own is allowed.
    QueryContext ctx;
    ctx.deadline = absl::Now() + absl::Seconds(30);
    return profile->QueryProfile(view, ctx, req);
  };
  return std::make_unique<const PprofEndpoints>(source, offered, config_.window);
}

std::string Agent::RenderMetrics() const {
  const StoreView view = store();
  Exposition e;
  e.Family("vigil_lost_events_total", "counter",
           "Events the agent could not record, by capability and cause.");
  for (const Slot& c : caps_) {
    if (c.state == CapabilityState::kOff) continue;
    for (const auto& [cause, n] : c.cap->Losses(view)) {
      e.Sample({{"capability", c.cap->name()}, {"cause", cause}}, static_cast<double>(n));
    }
  }
  for (const Slot& c : caps_) {
    if (c.state != CapabilityState::kOff) c.cap->RenderMetrics(view, &e);
  }
  alerts_->RenderMetrics(&e);
  {
    absl::MutexLock lock(&health_mu_);
    e.Gauge("vigil_poll_duration_seconds", "Duration of the last collection.",
            absl::ToDoubleSeconds(last_poll_));
    e.Counter("vigil_poll_seconds_total", "Time spent collecting, since start.",
              absl::ToDoubleSeconds(poll_time_total_));
    e.Counter("vigil_polls_total", "Collections since start.", static_cast<double>(polls_));
  }
  e.Family("vigil_capability_up", "gauge",
           "1 if a capability is collecting, 0 if off or its collection is stuck.");
  for (size_t i = 0; i < caps_.size(); ++i) {
    const bool up = caps_[i].state != CapabilityState::kOff && !Stuck(i);
    e.Sample({{"capability", caps_[i].cap->name()}}, up ? 1 : 0);
  }
  e.Family("vigil_capability_disabled", "gauge",
           "1 if a capability is off because the configuration turned it off.");
  for (const Slot& c : caps_) {
    e.Sample({{"capability", c.cap->name()}}, c.cap->disabled() ? 1 : 0);
  }
  e.Counter("vigil_agent_cpu_seconds_total", "CPU time (user + system) used by vigild.",
            CpuNs() / 1e9);
  e.Gauge("vigil_agent_resident_memory_bytes", "Resident set size of vigild.",
          static_cast<double>(ReadRssBytes()));
  e.Family("vigil_agent_heap_bytes", "gauge",
           "vigild's malloc heap: in_use (allocated), free (freed but still held by malloc).");
  const HeapBytes heap = ReadHeap();
  e.Sample({{"state", "in_use"}}, static_cast<double>(heap.in_use));
  e.Sample({{"state", "free"}}, static_cast<double>(heap.free));
  e.Gauge("vigil_agent_start_time_seconds", "When vigild started, Unix time.",
          absl::ToUnixSeconds(started_));
  const SharedAnswers::Stats shared = view.shared_stats();
  e.Family("vigil_query_answers_total", "counter",
           "Store queries answered, by how: merged (by the caller), joined (an identical merge "
           "in flight), stored (an identical answer kept since the store last changed).");
  e.Sample({{"how", "merged"}}, static_cast<double>(shared.merged));
  e.Sample({{"how", "joined"}}, static_cast<double>(shared.joined));
  e.Sample({{"how", "stored"}}, static_cast<double>(shared.stored));
  e.Counter("vigil_query_answers_not_kept_total",
            "Answers too large to keep within --query-share-bytes.",
            static_cast<double>(shared.not_kept));
  e.Gauge("vigil_query_answers_kept_bytes", "Kept answers' size in memory, in bytes.",
          static_cast<double>(shared.bytes));
  e.Family("vigil_grpc_requests_total", "counter", "gRPC requests answered, by method and code.");
  {
    absl::MutexLock lock(&rpc_mu_);
    std::vector<std::pair<std::pair<std::string, int>, uint64_t>> rows(rpc_counts_.begin(),
                                                                       rpc_counts_.end());
    std::sort(rows.begin(), rows.end());
    for (const auto& [k, n] : rows) {
      e.Sample({{"method", k.first},
                {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(k.second))}},
               static_cast<double>(n));
    }
  }
  return e.text();
}

}  // namespace vigil
