// Spin alerts, pure logic: the detector on synthetic intervals, the signal
// builder against a fake /proc, the alert book, settings, metrics, and the
// on-alert runner (which runs /bin/sh, no privileges needed).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "agent/alerts/alert_book.h"
#include "agent/alerts/alert_stream.h"
#include "agent/alerts/on_alert.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_settings.h"
#include "agent/spin/spin_signal.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);
constexpr absl::Duration kIv = absl::Seconds(1);

SpinConfig Cfg() {
  SpinConfig c;
  c.cpu_threshold = 0.9;
  c.min_duration = absl::Seconds(5);
  return c;
}

SpinObservation Spinning(uint32_t tid, uint32_t pid = 100) {
  SpinObservation o;
  o.pid = pid;
  o.tid = tid;
  o.comm = "worker";
  o.pcomm = "app";
  o.oncpu_ns = 990000000;  // 0.99 of a 1 s interval
  return o;
}

struct DetectorRun {
  std::unique_ptr<SpinDetector> d;
  int step = 0;
  std::vector<SpinEvent> Step(const std::vector<SpinObservation>& obs) {
    const absl::Time start = kT0 + step * kIv;
    ++step;
    return d->Observe(start, start + kIv, obs);
  }
};

DetectorRun NewRun(SpinConfig c = Cfg()) {
  absl::StatusOr<std::unique_ptr<SpinDetector>> d = SpinDetector::Create(c);
  EXPECT_TRUE(d.ok()) << d.status();
  return DetectorRun{*std::move(d)};
}

TEST(SpinDetector, FiresOnceAfterMinDuration) {
  DetectorRun r = NewRun();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.Step({Spinning(7)}).empty()) << i;
  std::vector<SpinEvent> ev = r.Step({Spinning(7)});  // 5 s of spin
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, SpinEventKind::kFired);
  EXPECT_EQ(ev[0].tid, 7u);
  EXPECT_EQ(ev[0].pid, 100u);
  EXPECT_EQ(ev[0].comm, "worker");
  EXPECT_EQ(ev[0].start, kT0);
  EXPECT_EQ(ev[0].duration, absl::Seconds(5));
  EXPECT_NEAR(ev[0].cpu_share, 0.99, 1e-9);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(r.Step({Spinning(7)}).empty());
  EXPECT_EQ(r.d->fired_total(), 1u);
  EXPECT_EQ(r.d->firing(), 1u);
}

TEST(SpinDetector, SyscallsOrBlockingOrKernelNeverFire) {
  DetectorRun r = NewRun();
  for (int i = 0; i < 20; ++i) {
    SpinObservation a = Spinning(1), b = Spinning(2), c = Spinning(3);
    a.syscalls = 1000;
    b.voluntary_switches = 1;
    c.in_kernel = true;
    EXPECT_TRUE(r.Step({a, b, c}).empty());
  }
  EXPECT_EQ(r.d->fired_total(), 0u);
}

TEST(SpinDetector, BelowThresholdOrIdleNeverFires) {
  DetectorRun r = NewRun();
  for (int i = 0; i < 20; ++i) {
    SpinObservation a = Spinning(1);
    a.oncpu_ns = 850000000;
    SpinObservation idle = Spinning(2);
    idle.oncpu_ns = 0;
    EXPECT_TRUE(r.Step({a, idle}).empty());
  }
  EXPECT_TRUE(r.d->Tracked().empty());
}

TEST(SpinDetector, ShortSpinNeverFires) {
  DetectorRun r = NewRun();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.Step({Spinning(7)}).empty());
    SpinObservation pause = Spinning(7);
    pause.syscalls = 1;
    EXPECT_TRUE(r.Step({pause}).empty());
  }
  EXPECT_EQ(r.d->fired_total(), 0u);
}

std::vector<SpinEvent> FireThen(DetectorRun* r, const std::vector<SpinObservation>& next) {
  for (int i = 0; i < 5; ++i) r->Step({Spinning(7)});
  EXPECT_EQ(r->d->firing(), 1u);
  return r->Step(next);
}

TEST(SpinDetector, ResolvesWithReason) {
  struct Case {
    const char* reason;
    SpinObservation obs;
  };
  SpinObservation sys = Spinning(7), blocked = Spinning(7), idle = Spinning(7);
  sys.syscalls = 3;
  blocked.voluntary_switches = 2;
  idle.oncpu_ns = 100;
  for (const Case& c : {Case{"syscall", sys}, Case{"blocked", blocked}, Case{"idle", idle}}) {
    DetectorRun r = NewRun();
    std::vector<SpinEvent> ev = FireThen(&r, {c.obs});
    ASSERT_EQ(ev.size(), 1u) << c.reason;
    EXPECT_EQ(ev[0].kind, SpinEventKind::kResolved);
    EXPECT_EQ(ev[0].reason, c.reason);
    EXPECT_EQ(ev[0].id, 1u);
    EXPECT_EQ(ev[0].duration, absl::Seconds(5));  // up to the last spinning interval
    EXPECT_EQ(r.d->firing(), 0u);
  }
  DetectorRun r = NewRun();
  std::vector<SpinEvent> ev = FireThen(&r, {});  // not observed: gone
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, "exited");
  EXPECT_TRUE(r.d->Tracked().empty());
}

TEST(SpinDetector, UnknownIntervalHolds) {
  DetectorRun r = NewRun();
  for (int i = 0; i < 3; ++i) r.Step({Spinning(7)});
  SpinObservation unknown = Spinning(7);
  unknown.known = false;
  unknown.syscalls = 5;  // not trusted
  EXPECT_TRUE(r.Step({unknown}).empty());
  EXPECT_TRUE(r.d->IsTracked(7));
  std::vector<SpinEvent> ev = r.Step({Spinning(7)});
  ASSERT_EQ(ev.size(), 1u);  // 5 s since the streak began
}

TEST(SpinDetector, TwoSpinnersTwoAlerts) {
  DetectorRun r = NewRun();
  std::vector<SpinEvent> ev;
  for (int i = 0; i < 5; ++i) ev = r.Step({Spinning(7), Spinning(8)});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_NE(ev[0].tid, ev[1].tid);
  EXPECT_NE(ev[0].id, ev[1].id);
}

TEST(SpinDetector, IgnoreCommAndCgroup) {
  SpinConfig c = Cfg();
  c.ignore_comm = "^worker$";
  c.ignore_cgroup = "batch\\.slice";
  DetectorRun r = NewRun(c);
  for (int i = 0; i < 10; ++i) {
    SpinObservation by_comm = Spinning(1);
    SpinObservation by_pcomm = Spinning(2);
    by_pcomm.comm = "other";
    by_pcomm.pcomm = "worker";
    SpinObservation by_cg = Spinning(3);
    by_cg.comm = by_cg.pcomm = "x";
    by_cg.cgroup = "/batch.slice/job.scope";
    SpinObservation kept = Spinning(4);
    kept.comm = kept.pcomm = "y";
    kept.cgroup = "/system.slice/y.service";
    for (const SpinEvent& e : r.Step({by_comm, by_pcomm, by_cg, kept})) EXPECT_EQ(e.tid, 4u);
  }
  EXPECT_EQ(r.d->fired_total(), 1u);
  EXPECT_GT(r.d->ignored_total(), 0u);
}

TEST(SpinDetector, TrackingIsBoundedAndOverflowCounted) {
  SpinConfig c = Cfg();
  c.max_tracked = 2;
  DetectorRun r = NewRun(c);
  r.Step({Spinning(1), Spinning(2), Spinning(3)});
  EXPECT_EQ(r.d->Tracked().size(), 2u);
  EXPECT_EQ(r.d->tracking_overflow(), 1u);
}

TEST(SpinDetector, BadConfigIsInvalidArgument) {
  SpinConfig c = Cfg();
  c.cpu_threshold = 1.5;
  EXPECT_EQ(SpinDetector::Create(c).status().code(), absl::StatusCode::kInvalidArgument);
  c = Cfg();
  c.ignore_comm = "(";
  absl::Status s = SpinDetector::Create(c).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "spin-ignore-comm")) << s;
}

// --- the signal builder against a fake /proc ---------------------------------

class FakeProc final : public ProcReader {
 public:
  std::map<uint32_t, ThreadCounters> threads;
  int reads = 0;
  bool ReadThread(uint32_t pid, uint32_t tid, ThreadCounters* out) override {
    ++reads;
    auto it = threads.find(tid);
    if (it == threads.end()) return false;
    *out = it->second;
    return true;
  }
  std::string Cgroup(uint32_t) override { return "/system.slice/app.service"; }
  std::string Cmdline(uint32_t) override { return "app --flag"; }
};

ProfileInterval Samples(std::vector<std::tuple<uint32_t, uint64_t, bool>> tid_samples_kernel) {
  ProfileInterval iv;
  for (auto [tid, n, kernel] : tid_samples_kernel) {
    ProfileStackRecord r;
    r.tgid = 100;
    r.tid = tid;
    r.samples = n;
    r.kernel_frames = kernel ? 1 : 0;
    snprintf(r.comm, sizeof(r.comm), "t%u", tid);
    snprintf(r.pcomm, sizeof(r.pcomm), "app");
    iv.stacks.push_back(r);
  }
  return iv;
}

TEST(SpinSignal, CandidatesFromSamplesThenExactFromProc) {
  SpinConfig c = Cfg();
  auto fake = std::make_unique<FakeProc>();
  FakeProc* proc = fake.get();
  SpinSignal sig(c, /*sample_hz=*/100, std::move(fake));
  auto det = *SpinDetector::Create(c);
  proc->threads[7] = {5000000000ull, 3};
  proc->threads[8] = {1000, 0};
  SyscallInterval sys;
  SyscallRecord rec;
  rec.tid = 7;
  rec.calls = 0;
  sys.records.push_back(rec);
  // 100 Hz over 1 s: tid 7 has a full CPU of samples, tid 8 only 10.
  std::vector<SpinObservation> obs =
      sig.Build(kT0, kT0 + kIv, Samples({{7, 100, false}, {8, 10, false}}), &sys, *det);
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(obs[0].tid, 7u);
  EXPECT_EQ(obs[0].oncpu_ns, 1000000000u);  // estimated from samples, capped at the interval
  EXPECT_EQ(obs[0].comm, "t7");
  EXPECT_EQ(obs[0].cgroup, "/system.slice/app.service");
  EXPECT_TRUE(obs[0].known);
  // Next interval: exact deltas from the baseline.
  proc->threads[7] = {5000000000ull + 950000000ull, 4};
  sys.records[0].calls = 2;
  obs = sig.Build(kT0 + kIv, kT0 + 2 * kIv, Samples({{7, 95, false}}), &sys, *det);
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(obs[0].oncpu_ns, 950000000u);
  EXPECT_EQ(obs[0].voluntary_switches, 1u);
  EXPECT_EQ(obs[0].syscalls, 2u);
  EXPECT_EQ(sig.baselines(), 1u);
}

TEST(SpinSignal, KernelSamplesAndLossAndExit) {
  SpinConfig c = Cfg();
  auto fake = std::make_unique<FakeProc>();
  FakeProc* proc = fake.get();
  SpinSignal sig(c, 100, std::move(fake));
  auto det = *SpinDetector::Create(c);
  proc->threads[7] = {0, 0};
  SyscallInterval sys;
  sys.loss.map_full = 1;
  std::vector<SpinObservation> obs =
      sig.Build(kT0, kT0 + kIv, Samples({{7, 30, false}, {7, 70, true}}), &sys, *det);
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_TRUE(obs[0].in_kernel);
  EXPECT_FALSE(obs[0].known);
  obs = sig.Build(kT0, kT0 + kIv, Samples({{7, 100, false}}), nullptr, *det);
  EXPECT_FALSE(obs[0].known);
  proc->threads.clear();  // exited: no observation
  EXPECT_TRUE(sig.Build(kT0, kT0 + kIv, Samples({{7, 100, false}}), &sys, *det).empty());
}

// Page-fault samples share the profiler's table but are not CPU time: a
// thread with many of them is no spin candidate.
TEST(SpinSignal, PageFaultSamplesAreNotCpuTime) {
  SpinConfig c = Cfg();
  auto fake = std::make_unique<FakeProc>();
  FakeProc* proc = fake.get();
  SpinSignal sig(c, 100, std::move(fake));
  auto det = *SpinDetector::Create(c);
  proc->threads[9] = {5000000000ull, 3};
  ProfileInterval iv = Samples({{9, 1000, false}});
  iv.stacks[0].kind = PROFILE_KIND_FAULT;
  EXPECT_TRUE(sig.Build(kT0, kT0 + kIv, iv, nullptr, *det).empty());
  iv.stacks[0].kind = PROFILE_KIND_CPU;
  EXPECT_EQ(sig.Build(kT0, kT0 + kIv, iv, nullptr, *det).size(), 1u);
}

TEST(SpinSignal, ContainerId) {
  const std::string id(64, 'a');
  EXPECT_EQ(ContainerIdFromCgroup("/system.slice/docker-" + id + ".scope"), id);
  EXPECT_EQ(ContainerIdFromCgroup("/kubepods/burstable/pod1/cri-containerd-" + id + ".scope"), id);
  EXPECT_EQ(ContainerIdFromCgroup("/docker/" + id), id);
  EXPECT_EQ(ContainerIdFromCgroup("/system.slice/ssh.service"), "");
  EXPECT_EQ(ContainerIdFromCgroup(""), "");
}

// --- alert book -----------------------------------------------------------------

v1::SpinAlert Alert(uint64_t id, v1::AlertState state) {
  v1::SpinAlert a;
  a.set_id(id);
  a.set_state(state);
  a.set_kind(v1::ALERT_KIND_SPIN);
  return a;
}

TEST(AlertBook, ActiveThenBoundedHistory) {
  AlertBook book(/*history=*/2, /*max_streams=*/1, /*stream_queue=*/2);
  for (uint64_t id = 1; id <= 3; ++id) book.Publish(Alert(id, v1::ALERT_STATE_FIRING));
  EXPECT_EQ(book.counters().firing, 3u);
  for (uint64_t id = 1; id <= 3; ++id) book.Publish(Alert(id, v1::ALERT_STATE_RESOLVED));
  std::vector<v1::SpinAlert> all = book.List(0);
  ASSERT_EQ(all.size(), 2u);   // history bound
  EXPECT_EQ(all[0].id(), 3u);  // newest first
  EXPECT_EQ(book.List(1).size(), 1u);
  EXPECT_EQ(book.counters().fired_total, 3u);
  EXPECT_EQ(book.counters().firing, 0u);
}

TEST(AlertBook, StreamsAreCappedAndSlowReadersDropped) {
  AlertBook book(10, 1, 2);
  book.Publish(Alert(1, v1::ALERT_STATE_FIRING));
  absl::StatusOr<std::shared_ptr<AlertSubscription>> s = book.Subscribe(true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(book.Subscribe(false).status().code(), absl::StatusCode::kResourceExhausted);
  v1::SpinAlert got;
  ASSERT_TRUE((*s)->Next(absl::ZeroDuration(), &got));  // the active one
  EXPECT_EQ(got.id(), 1u);
  EXPECT_FALSE((*s)->Next(absl::ZeroDuration(), &got));
  for (uint64_t id = 2; id <= 4; ++id)
    book.Publish(Alert(id, v1::ALERT_STATE_FIRING));  // queue of 2
  EXPECT_EQ(book.counters().streams_overflowed, 1u);
  EXPECT_EQ(book.counters().streams, 0u);
  EXPECT_TRUE(book.Subscribe(false).ok());  // room again
  book.CloseAll();
  EXPECT_EQ(book.Subscribe(false).status().code(), absl::StatusCode::kUnavailable);
}

// Memory-growth alerts share the book but are not spinning threads: a
// leaking process must not read as vigil_spin_alerts_firing 1.
TEST(AlertBook, CountsEachKindApart) {
  AlertBook book(10, 1, 2);
  book.Publish(Alert(1, v1::ALERT_STATE_FIRING));
  v1::SpinAlert mem = Alert((uint64_t{1} << 62) | 1, v1::ALERT_STATE_FIRING);
  mem.set_kind(v1::ALERT_KIND_MEMORY_GROWTH);
  book.Publish(mem);
  mem.set_state(v1::ALERT_STATE_RESOLVED);
  book.Publish(mem);
  book.Publish(Alert(2, v1::ALERT_STATE_FIRING));
  const AlertCounters spin = book.counters(v1::ALERT_KIND_SPIN);
  EXPECT_EQ(spin.firing, 2u);
  EXPECT_EQ(spin.fired_total, 2u);
  EXPECT_EQ(spin.resolved_total, 0u);
  const AlertCounters growth = book.counters(v1::ALERT_KIND_MEMORY_GROWTH);
  EXPECT_EQ(growth.firing, 0u);
  EXPECT_EQ(growth.fired_total, 1u);
  EXPECT_EQ(growth.resolved_total, 1u);
  EXPECT_EQ(book.counters().fired_total, 3u);
}

TEST(AlertStream, RendersItsOwnFamiliesAndRefusesZeroBounds) {
  AlertsConfig c;
  c.stream_queue = 0;
  EXPECT_EQ(AlertStream::Create(c).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<AlertStream>> s = AlertStream::Create(AlertsConfig());
  ASSERT_TRUE(s.ok());
  absl::StatusOr<std::shared_ptr<AlertSubscription>> w = (*s)->Watch(false);
  ASSERT_TRUE(w.ok());
  Exposition e;
  (*s)->RenderMetrics(&e);
  EXPECT_TRUE(
      absl::StrContains(e.text(), "# TYPE vigil_alert_streams gauge\nvigil_alert_streams 1\n"))
      << e.text();
  EXPECT_TRUE(absl::StrContains(e.text(), "vigil_on_alert_runs_total 0\n")) << e.text();
  (*s)->EndWatch(*w);
  v1::ListAlertsRequest req;
  req.set_recent(100001);
  EXPECT_EQ((*s)->List(req).status().code(), absl::StatusCode::kInvalidArgument);
}

// One labelled series per firing alert, by kind, gone once it resolves: what
// deploy/prometheus/vigil-alerts.yml names the thread or process from.
TEST(SpinMetrics, FiringAlertsAreLabelledSeries) {
  AlertBook book(10, 1, 2);
  v1::SpinAlert spin = Alert(7, v1::ALERT_STATE_FIRING);
  spin.set_kind(v1::ALERT_KIND_SPIN);
  spin.set_pid(41);
  spin.set_tid(42);
  spin.set_comm("poll");
  spin.set_process_comm("tremor\"x");
  book.Publish(spin);
  v1::SpinAlert growth = Alert(uint64_t{1} << 62 | 1, v1::ALERT_STATE_FIRING);
  growth.set_kind(v1::ALERT_KIND_MEMORY_GROWTH);
  growth.set_pid(50);
  growth.set_comm("leaky");
  book.Publish(growth);
  Exposition e;
  book.RenderFiring(&e);
  EXPECT_TRUE(absl::StrContains(
      e.text(),
      "vigil_spin_alert_info{id=\"7\",pid=\"41\",tid=\"42\",comm=\"poll\",process_comm="
      "\"tremor\\\"x\"} 1\n"))
      << e.text();
  EXPECT_TRUE(absl::StrContains(e.text(),
                                "vigil_memory_growth_alert_info{id=\"4611686018427387905\","
                                "pid=\"50\",comm=\"leaky\"} 1\n"))
      << e.text();
  EXPECT_FALSE(absl::StrContains(e.text(), "vigil_spin_alert_info{id=\"4611686018427387905\""));
  book.Publish(Alert(7, v1::ALERT_STATE_RESOLVED));
  Exposition after;
  book.RenderFiring(&after);
  EXPECT_FALSE(absl::StrContains(after.text(), "vigil_spin_alert_info{")) << after.text();
  EXPECT_TRUE(absl::StrContains(after.text(), "vigil_memory_growth_alert_info{"));
}

// --- settings ---------------------------------------------------------------------

TEST(SpinSettings, ParsesAndRejects) {
  SpinConfig c;
  EXPECT_TRUE(ApplySpinSetting("spin-cpu-threshold", "0.5", &c).ok());
  EXPECT_DOUBLE_EQ(c.cpu_threshold, 0.5);
  EXPECT_TRUE(ApplySpinSetting("spin-min-duration", "3s", &c).ok());
  EXPECT_EQ(c.min_duration, absl::Seconds(3));
  EXPECT_TRUE(ApplySpinSetting("spin-ignore-comm", "^java$", &c).ok());
  EXPECT_TRUE(ApplySpinSetting("spin", "off", &c).ok());
  EXPECT_FALSE(c.enabled);
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{{"spin-cpu-threshold", "0"},
                                                                      {"spin-cpu-threshold", "1.1"},
                                                                      {"spin-cpu-threshold", "x"},
                                                                      {"spin-min-duration", "-1s"},
                                                                      {"spin-min-duration", "soon"},
                                                                      {"spin-ignore-cgroup", "["},
                                                                      {"spin", "maybe"},
                                                                      {"on-alert-timeout", "0s"},
                                                                      {"spin-nope", "1"}}) {
    absl::Status s = ApplySpinSetting(k, v, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k << "=" << v;
    EXPECT_EQ(s.message().find('\n'), absl::string_view::npos);
  }
  for (const SpinSettingInfo& i : SpinSettings()) EXPECT_TRUE(IsSpinSetting(i.name));
}

// --- on-alert runner ----------------------------------------------------------------

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(OnAlertRunner, GivesJsonOnStdinAndKillsAfterTimeout) {
  test::TempDir dir;
  const std::string out = dir.path() + "/got";
  {
    OnAlertRunner r("cat >> " + out + "; echo >> " + out, absl::Seconds(5), 4);
    r.Enqueue("{\"id\":1}");
    r.Enqueue("{\"id\":2}");
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (r.counters().runs < 2 || Slurp(out).size() < 18) {
      ASSERT_LT(absl::Now(), deadline);
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  EXPECT_EQ(Slurp(out), "{\"id\":1}\n{\"id\":2}\n");
  OnAlertRunner slow("sleep 30", absl::Milliseconds(200), 1);
  slow.Enqueue("{}");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (slow.counters().timeouts < 1) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(20));
  }
  OnAlertRunner failing("exit 3", absl::Seconds(5), 1);
  failing.Enqueue("{}");
  while (failing.counters().failures < 1) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// A command that exits without reading stdin, given more than a pipe holds:
// the write fails with EPIPE for certain. Its SIGPIPE must not kill the
// process hosting the runner (this test binary does not ignore SIGPIPE; a
// CI run lost the whole unit-test process to the race in "exit 3" above).
TEST(OnAlertRunner, ACommandThatIgnoresStdinCannotKillTheHost) {
  OnAlertRunner r("exit 4", absl::Seconds(5), 1);
  r.Enqueue(std::string(1 << 20, 'x'));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (r.counters().failures < 1) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(r.counters().runs, 1u);
}

}  // namespace
}  // namespace vigil
