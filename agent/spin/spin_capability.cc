#include "agent/spin/spin_capability.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/safe_proto.h"
#include "common/state_names.h"

namespace vigil {
namespace {

std::string FrameName(const v1::ProfileFrame& f) {
  if (!f.name().empty()) return f.name();
  return absl::StrFormat("%s+0x%x", f.module(), f.offset());
}

// One journald-friendly line: key=value pairs, values with spaces quoted.
std::string LogLine(const v1::SpinAlert& a) {
  std::string top = a.stacks_size() > 0 && a.stacks(0).values_size() > 0
                        ? a.stacks(0).values(0).string_value()
                        : "";
  std::string line = absl::StrFormat(
      "vigild: spin alert %s id=%d pid=%d tid=%d comm=\"%s\" process=\"%s\" cpu_share=%.2f "
      "duration=%s",
      StateName(a.state()), a.id(), a.pid(), a.tid(), absl::CEscape(a.comm()),
      absl::CEscape(a.process_comm()), a.cpu_share(),
      absl::FormatDuration(absl::Seconds(a.duration_ns() / 1000000000)));
  if (a.state() == v1::ALERT_STATE_RESOLVED)
    absl::StrAppend(&line, " reason=", a.resolved_reason());
  if (!a.cgroup().empty()) absl::StrAppend(&line, " cgroup=\"", absl::CEscape(a.cgroup()), "\"");
  if (!top.empty()) absl::StrAppend(&line, " top=\"", absl::CEscape(top), "\"");
  return line;
}

}  // namespace

SpinCapability::SpinCapability(const SpinConfig& config) : config_(config) {}

absl::Status SpinCapability::Init(const InitContext& ctx) {
  if (!config_.enabled) return Disabled("--spin off");
  syscalls_ = ctx.Get<SyscallsCapability>();
  profile_ = ctx.Get<ProfileCapability>();
  if (syscalls_ == nullptr || profile_ == nullptr) {
    return absl::FailedPreconditionError("needs the syscalls and profile capabilities");
  }
  absl::StatusOr<std::unique_ptr<SpinDetector>> d = SpinDetector::Create(config_);
  if (!d.ok()) return d.status();
  detector_ = *std::move(d);
  signal_ = std::make_unique<SpinSignal>(config_, profile_->sample_hz(), NewProcReader());
  alerts_ = ctx.alerts;
  hostname_ = ctx.hostname;
  store_ = std::make_unique<StoreView>(ctx.store->view());
  return absl::OkStatus();
}

absl::Status SpinCapability::Collect(const IntervalSpan& span, StoreWriter&) {
  const absl::Time start = span.start, end = span.end;
  const bool syscalls_ok = syscalls_->last_ok();
  std::vector<SpinObservation> obs;
  const ProfileInterval* prof = nullptr;
  const SyscallInterval* sys = nullptr;
  // Both intervals are read, and Build runs, under one reader lock.
  store_->WithLock([&](const StoreView::Locked& l) {
    l.ForEach(profile_->table(), start, end, [&](const auto& iv) {
      if (iv.start == start && iv.end == end) prof = &iv.data;
    });
    l.ForEach(syscalls_->table(), start, end, [&](const auto& iv) {
      if (iv.start == start && iv.end == end) sys = &iv.data;
    });
    // Without this interval's samples nothing can be judged; skipping it
    // keeps every streak as it is (tracked threads are not taken as exited).
    if (prof == nullptr) return 0;
    obs = signal_->Build(start, end, *prof, syscalls_ok ? sys : nullptr, *detector_);
    return 0;
  });
  if (prof == nullptr) return absl::OkStatus();
  std::vector<SpinEvent> events = detector_->Observe(start, end, obs);
  tracking_overflow_.store(detector_->tracking_overflow(), std::memory_order_relaxed);
  for (const SpinEvent& e : events) {
    const v1::SpinAlert a = MakeAlert(e, end);
    fprintf(stderr, "%s\n", LogLine(a).c_str());
    alerts_->Publish(a);
  }
  return absl::OkStatus();
}

void SpinCapability::Stop() {}

v1::SpinAlert SpinCapability::MakeAlert(const SpinEvent& e, absl::Time now) {
  v1::SpinAlert a;
  if (e.kind == SpinEventKind::kResolved && alerts_->Active(e.id, &a)) {
    // Keep what the firing event said (cmdline, stacks); the thread may be
    // gone by now.
    a.set_state(v1::ALERT_STATE_RESOLVED);
    a.set_resolved_reason(e.reason);
    a.set_duration_ns(absl::ToInt64Nanoseconds(e.duration));
    a.set_cpu_share(e.cpu_share);
    a.set_event_unix_ns(absl::ToUnixNanos(now));
    return a;
  }
  a.set_id(e.id);
  a.set_state(e.kind == SpinEventKind::kFired ? v1::ALERT_STATE_FIRING : v1::ALERT_STATE_RESOLVED);
  a.set_kind(v1::ALERT_KIND_SPIN);
  a.set_resolved_reason(e.reason);
  a.set_host(hostname_);
  a.set_pid(e.pid);
  a.set_tid(e.tid);
  a.set_comm(e.comm);
  a.set_process_comm(e.pcomm);
  a.set_cmdline(signal_->proc()->Cmdline(e.pid));
  a.set_cgroup(e.cgroup);
  a.set_container_id(ContainerIdFromCgroup(e.cgroup));
  a.set_start_unix_ns(absl::ToUnixNanos(e.start));
  a.set_duration_ns(absl::ToInt64Nanoseconds(e.duration));
  a.set_cpu_share(e.cpu_share);
  a.set_event_unix_ns(absl::ToUnixNanos(now));

  // The thread's stacks over the spin, from the profiler's store.
  ProfileQuery q;
  q.pid = e.pid;
  q.tid = e.tid;
  q.frames = v1::FRAME_FILTER_ALL;
  ProfileMerger merger(q);
  v1::ProfileResponse prof;
  store_->ForEach(
      profile_->table(), e.start, now, [&](const auto& iv) { merger.Add(iv.data); },
      [&](const Coverage&) { merger.Finish(&prof); });
  std::vector<const v1::ProfileStack*> stacks;
  for (const auto& s : prof.stacks()) stacks.push_back(&s);
  std::sort(stacks.begin(), stacks.end(), [](const v1::ProfileStack* x, const v1::ProfileStack* y) {
    return x->samples() > y->samples();
  });
  if (stacks.size() > config_.top_stacks) stacks.resize(config_.top_stacks);
  for (const v1::ProfileStack* s : stacks) {
    google::protobuf::ListValue* out = a.add_stacks();
    for (int i = 0; i < s->frame_ids_size() && i < static_cast<int>(config_.max_frames); ++i) {
      const uint32_t id = s->frame_ids(i);
      if (id >= static_cast<uint32_t>(prof.frames_size())) continue;
      out->add_values()->set_string_value(FrameName(prof.frames(id)));
    }
    a.add_stack_samples(s->samples());
  }
  // The log line, the on-alert JSON and every stream carry these names.
  MakeStringsSafe(&a);
  return a;
}

// Spin reads other capabilities' tables and loses nothing of its own; its
// one bound is its own metric, vigil_spin_tracking_overflow_total.
void SpinCapability::FillStatus(const StoreView&, v1::StatusResponse*) const {}
std::vector<std::pair<std::string, uint64_t>> SpinCapability::Losses(const StoreView&) const {
  return {};
}

void SpinCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  const AlertCounters a = alerts_->counters(v1::ALERT_KIND_SPIN);
  e->Gauge("vigil_spin_alerts_firing",
           "Threads spinning (on CPU without syscalls) past spin-min-duration now.", a.firing);
  e->Counter("vigil_spin_alerts_total", "Spin alerts fired since the agent started.",
             a.fired_total);
  e->Counter("vigil_spin_alerts_resolved_total", "Spin alerts resolved since the agent started.",
             a.resolved_total);
  e->Counter("vigil_spin_tracking_overflow_total",
             "Spinning threads not tracked because the detector's table was full.",
             tracking_overflow());
}

}  // namespace vigil
