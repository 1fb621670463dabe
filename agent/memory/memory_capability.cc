#include "agent/memory/memory_capability.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/safe_proto.h"
#include "common/status_macros.h"

namespace vigil {

absl::Status MemoryCapability::Init(const InitContext& ctx) {
  if (!config_.enabled) return Disabled("--memory off");
  VIGIL_ASSIGN_OR_RETURN(collector_, MemoryCollector::Create(config_));
  AddDegraded(collector_->degraded());
  table_ = ctx.store->Register<MemoryInterval>(config_.store_max_records);
  hostname_ = ctx.hostname;
  profile_ = ctx.Get<ProfileCapability>();
  store_ = std::make_unique<StoreView>(ctx.store->view());
  if (config_.growth.enabled) {
    alerts_ = ctx.alerts;
    growth_ = std::make_unique<GrowthDetector>(config_.growth);
  }
  return absl::OkStatus();
}

absl::Status MemoryCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<MemoryInterval> iv = collector_->Collect(span.end);
  if (!iv.ok()) return iv.status();
  if (growth_ != nullptr && iv->loss.read_failed == 0) {
    std::vector<GrowthSample> samples;
    samples.reserve(iv->procs.size());
    for (const ProcMemSample& p : iv->procs) {
      samples.push_back(GrowthSample{p.tgid, p.start_ns, p.rss_pages() * iv->page_size});
    }
    for (const GrowthEvent& e : growth_->Observe(span.end, samples)) Alert(e, *iv, span.end);
    absl::MutexLock lock(&mu_);
    growth_firing_ = growth_->firing();
    growth_overflow_ = growth_->tracking_overflow();
  }
  loss_total_.Add(iv->loss);
  {
    absl::MutexLock lock(&mu_);
    oom_kills_total_ += iv->ooms.size();
    last_iteration_ = collector_->last_iteration();
    last_processes_ = iv->procs.size();
  }
  store.Add(table_, span.start, span.end, *std::move(iv));
  return absl::OkStatus();
}

void MemoryCapability::Stop() { collector_.reset(); }

void MemoryCapability::Alert(const GrowthEvent& e, const MemoryInterval& iv, absl::Time now) {
  // Spin's ids count up from 1; these stay clear of them.
  const uint64_t id = (uint64_t{1} << 62) | e.id;
  v1::SpinAlert a;
  if (e.kind == GrowthEvent::kResolved) {
    if (!alerts_->Active(id, &a)) return;
    a.set_state(v1::ALERT_STATE_RESOLVED);
    a.set_resolved_reason(e.reason);
    a.set_duration_ns(absl::ToInt64Nanoseconds(now - absl::FromUnixNanos(a.start_unix_ns())));
    a.set_event_unix_ns(absl::ToUnixNanos(now));
    if (e.rss_bytes != 0) a.mutable_memory_growth()->set_rss_bytes(e.rss_bytes);
    a.mutable_memory_growth()->set_growth_bytes_per_s(e.rate_bytes_per_s);
    a.mutable_memory_growth()->set_seconds_left(0);
    alerts_->Publish(a);
    return;
  }
  const ProcMemSample* p = nullptr;
  for (const ProcMemSample& s : iv.procs) {
    if (s.tgid == e.pid) p = &s;
  }
  a.set_id(id);
  a.set_state(v1::ALERT_STATE_FIRING);
  a.set_kind(v1::ALERT_KIND_MEMORY_GROWTH);
  a.set_host(hostname_);
  a.set_pid(e.pid);
  a.set_start_unix_ns(absl::ToUnixNanos(e.since));
  a.set_duration_ns(absl::ToInt64Nanoseconds(now - e.since));
  a.set_event_unix_ns(absl::ToUnixNanos(now));
  v1::MemoryGrowthAlert* g = a.mutable_memory_growth();
  g->set_growth_bytes_per_s(e.rate_bytes_per_s);
  g->set_rss_bytes(e.rss_bytes);
  g->set_rss_start_bytes(e.rss_start_bytes);
  g->set_rising_intervals(e.rising);
  g->set_intervals(e.intervals);
  // The limit it runs into first: its cgroup's, or the host's.
  double room = static_cast<double>(iv.host_available_bytes);
  g->set_limit_bytes(iv.host_total_bytes);
  g->set_limit_kind("host");
  if (p != nullptr) {
    const std::string comm(p->comm, strnlen(p->comm, sizeof(p->comm)));
    a.set_comm(comm);
    a.set_process_comm(comm);
    for (const CgroupMemSample& c : iv.cgroups) {
      if (c.id != p->cgroup_id) continue;
      a.set_cgroup(c.path);
      if (c.limit_bytes > 0 && c.limit_bytes < iv.host_total_bytes) {
        g->set_limit_bytes(c.limit_bytes);
        g->set_limit_kind("cgroup");
        room = std::min(room, static_cast<double>(c.limit_bytes) -
                                  static_cast<double>(std::min(c.usage_bytes, c.limit_bytes)));
      }
    }
  }
  if (e.rate_bytes_per_s > 0) g->set_seconds_left(std::max(0.0, room) / e.rate_bytes_per_s);
  FillGrowingStacks(*store_, e.pid, e.since, now, kGrowingStacksAlertTop,
                    g->mutable_growing_stacks(), g->mutable_large_map_calls());
  {
    absl::MutexLock lock(&mu_);
    ++growth_fired_;
  }
  // Names and cgroup paths are user-chosen: escaped once, for the log, the
  // on-alert JSON and every stream.
  MakeStringsSafe(&a);
  alerts_->Publish(a);
}

absl::StatusOr<v1::MemoryResponse> MemoryCapability::Query(const StoreView& store,
                                                           const QueryContext& ctx,
                                                           const v1::MemoryRequest& req) const {
  VIGIL_ASSIGN_OR_RETURN(const MemoryQuery q, ValidateMemoryRequest(req));
  v1::MemoryResponse resp;
  MemoryMerger merger(q);
  // The slot stays held while --pid reads the profiler's tables too.
  VIGIL_ASSIGN_OR_RETURN(
      const StoreView::Merge m,
      store.MergeTable(
          req.range(), ctx, table_, [&](const auto& iv) { merger.Add(iv.data, iv.end); },
          [&](const Coverage&) { merger.Finish(&resp); }, &resp));
  if (q.pid != 0) {
    FillGrowingStacks(store, q.pid, m.from, m.to, kGrowingStacksTop, resp.mutable_growing_stacks(),
                      resp.mutable_large_map_calls());
  }
  return resp;
}

void MemoryCapability::FillGrowingStacks(const StoreView& store, uint32_t pid, absl::Time from,
                                         absl::Time to, size_t top, v1::GrowingStacks* out,
                                         v1::LargeMapCalls* maps) const {
  if (profile_ == nullptr) {
    out->set_unavailable(
        "page-fault sampling is off: the profile capability is off (vigil status says why)");
    maps->set_unavailable("not recorded: the profile capability is off (vigil status says why)");
    return;
  }
  profile_->LargeMapCalls(store, pid, from, to, top, kGrowingStackFrames, maps);
  absl::StatusOr<v1::ProfileResponse> prof = profile_->FaultProfile(store, pid, from, to);
  if (!prof.ok()) {
    out->set_unavailable(std::string(prof.status().message()));
    return;
  }
  FoldGrowingStacks(*prof, top, kGrowingStackFrames, out);
}

void MemoryCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  LossesToProto(Losses(store), out->mutable_memory_loss());
}

std::vector<std::pair<std::string, uint64_t>> MemoryCapability::Losses(
    const StoreView& store) const {
  uint64_t growth_overflow = 0;
  {
    absl::MutexLock lock(&mu_);
    growth_overflow = growth_overflow_;
  }
  return loss_total_.Named(store, table_, {{"growth_tracking_overflow", growth_overflow}});
}

void MemoryCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  e->Counter("vigil_oom_kills_total",
             "Processes the kernel's OOM killer chose, since the agent started.",
             static_cast<double>(oom_kills_total_));
  e->Gauge("vigil_memory_processes", "Processes recorded at the last interval.",
           static_cast<double>(last_processes_));
  e->Gauge("vigil_memory_iteration_seconds",
           "Time the last task iteration took (every process's RSS counters), in seconds.",
           absl::ToDoubleSeconds(last_iteration_));
  e->Gauge("vigil_memory_growth_alerts_firing",
           "Processes whose memory-growth alert is firing now.",
           static_cast<double>(growth_firing_));
  e->Counter("vigil_memory_growth_alerts_total",
             "Memory-growth alerts fired since the agent started.",
             static_cast<double>(growth_fired_));
}

}  // namespace vigil
