// The Agent's spin-alert capability: the detector runs once per interval on
// what the syscalls and profile collectors just stored, and its events go to
// the log, the alert book (ListAlerts / WatchAlerts / metrics) and the
// on-alert command.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/agent.h"

namespace vigil {
namespace {

constexpr uint32_t kMaxRecentAlerts = 100000;

std::string AlertJson(const v1::SpinAlert& a) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(a, &out, opts).ok()) return "{}";
  return out;
}

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
      a.state(), a.id(), a.pid(), a.tid(), absl::CEscape(a.comm()), absl::CEscape(a.process_comm()),
      a.cpu_share(), absl::FormatDuration(absl::Seconds(a.duration_ns() / 1000000000)));
  if (a.state() == "resolved") absl::StrAppend(&line, " reason=", a.resolved_reason());
  if (!a.cgroup().empty()) absl::StrAppend(&line, " cgroup=\"", absl::CEscape(a.cgroup()), "\"");
  if (!top.empty()) absl::StrAppend(&line, " top=\"", absl::CEscape(top), "\"");
  return line;
}

}  // namespace

void Agent::CreateSpin() {
  if (!config_.spin.enabled) {
    capabilities_.push_back({"spin", "off", "disabled (vigild --spin off)"});
    return;
  }
  if (syscalls_ == nullptr || profile_ == nullptr) {
    capabilities_.push_back({"spin", "off", "needs the syscalls and profile capabilities"});
    return;
  }
  absl::StatusOr<std::unique_ptr<SpinDetector>> d = SpinDetector::Create(config_.spin);
  if (!d.ok()) {
    capabilities_.push_back({"spin", "off", std::string(d.status().message())});
    return;
  }
  spin_detector_ = *std::move(d);
  spin_signal_ = std::make_unique<SpinSignal>(config_.spin, config_.profile.sample_hz, NewProcReader());
  if (!config_.spin.on_alert.empty()) {
    on_alert_ = std::make_unique<OnAlertRunner>(config_.spin.on_alert, config_.spin.on_alert_timeout,
                                                config_.spin.on_alert_queue);
  }
  spin_on_ = true;
  capabilities_.push_back({"spin", "running", ""});
}

void Agent::CollectSpin(absl::Time start, absl::Time end, bool syscalls_ok) {
  if (spin_detector_ == nullptr) return;
  std::vector<SpinObservation> obs;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    const ProfileInterval* prof = nullptr;
    const SyscallInterval* sys = nullptr;
    profile_window_.ForEachOverlapping(start, end, [&](const auto& iv) {
      if (iv.start == start && iv.end == end) prof = &iv.data;
    });
    syscall_window_.ForEachOverlapping(start, end, [&](const auto& iv) {
      if (iv.start == start && iv.end == end) sys = &iv.data;
    });
    // Without this interval's samples nothing can be judged; skipping it
    // keeps every streak as it is (tracked threads are not taken as exited).
    if (prof == nullptr) return;
    obs = spin_signal_->Build(start, end, *prof, syscalls_ok ? sys : nullptr, *spin_detector_);
  }
  std::vector<SpinEvent> events = spin_detector_->Observe(start, end, obs);
  spin_tracking_overflow_.store(spin_detector_->tracking_overflow(), std::memory_order_relaxed);
  for (const SpinEvent& e : events) {
    const v1::SpinAlert a = MakeAlert(e, end);
    fprintf(stderr, "%s\n", LogLine(a).c_str());
    alerts_.Publish(a);
    if (on_alert_ != nullptr) on_alert_->Enqueue(AlertJson(a));
  }
}

v1::SpinAlert Agent::MakeAlert(const SpinEvent& e, absl::Time now) {
  v1::SpinAlert a;
  if (e.kind == SpinEventKind::kResolved && alerts_.Active(e.id, &a)) {
    // Keep what the firing event said (cmdline, stacks); the thread may be
    // gone by now.
    a.set_state("resolved");
    a.set_resolved_reason(e.reason);
    a.set_duration_ns(absl::ToInt64Nanoseconds(e.duration));
    a.set_cpu_share(e.cpu_share);
    a.set_event_unix_ns(absl::ToUnixNanos(now));
    return a;
  }
  a.set_id(e.id);
  a.set_state(e.kind == SpinEventKind::kFired ? "firing" : "resolved");
  a.set_resolved_reason(e.reason);
  a.set_host(hostname_);
  a.set_pid(e.pid);
  a.set_tid(e.tid);
  a.set_comm(e.comm);
  a.set_process_comm(e.pcomm);
  a.set_cmdline(spin_signal_->proc()->Cmdline(e.pid));
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
  {
    absl::ReaderMutexLock lock(&store_mu_);
    profile_window_.ForEachOverlapping(e.start, now, [&](const auto& iv) { merger.Add(iv.data); });
    merger.Finish(&prof);
  }
  std::vector<const v1::ProfileStack*> stacks;
  for (const auto& s : prof.stacks()) stacks.push_back(&s);
  std::sort(stacks.begin(), stacks.end(), [](const v1::ProfileStack* x, const v1::ProfileStack* y) {
    return x->samples() > y->samples();
  });
  if (stacks.size() > config_.spin.top_stacks) stacks.resize(config_.spin.top_stacks);
  for (const v1::ProfileStack* s : stacks) {
    google::protobuf::ListValue* out = a.add_stacks();
    for (int i = 0; i < s->frame_ids_size() && i < static_cast<int>(config_.spin.max_frames); ++i) {
      const uint32_t id = s->frame_ids(i);
      if (id >= static_cast<uint32_t>(prof.frames_size())) continue;
      out->add_values()->set_string_value(FrameName(prof.frames(id)));
    }
    a.add_stack_samples(s->samples());
  }
  return a;
}

absl::StatusOr<v1::ListAlertsResponse> Agent::ListAlerts(const v1::ListAlertsRequest& req) const {
  if (req.recent() > kMaxRecentAlerts) {
    return absl::InvalidArgumentError(
        absl::StrCat("recent ", req.recent(), ": at most ", kMaxRecentAlerts));
  }
  v1::ListAlertsResponse resp;
  for (v1::SpinAlert& a : alerts_.List(req.recent())) *resp.add_alerts() = std::move(a);
  resp.set_fired_total(alerts_.counters().fired_total);
  resp.set_tracking_overflow(spin_tracking_overflow_.load(std::memory_order_relaxed));
  return resp;
}

absl::StatusOr<std::shared_ptr<AlertSubscription>> Agent::WatchAlerts(bool include_active) const {
  if (!spin_on_) {
    return absl::FailedPreconditionError("spin alerts are off on this agent (see vigil status)");
  }
  return alerts_.Subscribe(include_active);
}

std::string Agent::RenderSpinMetrics() const {
  return vigil::RenderSpinMetrics(alerts_.counters(),
                                  on_alert_ ? on_alert_->counters() : OnAlertCounters{},
                                  spin_tracking_overflow_.load(std::memory_order_relaxed));
}

}  // namespace vigil
