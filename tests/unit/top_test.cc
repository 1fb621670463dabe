// vigil top's pure logic: the join of every capability's answer into rows
// (top_join), and the screen's text (client/top_format).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "agent/cpu/cpu_aggregate.h"
#include "agent/top/top_join.h"
#include "client/top_format.h"

namespace vigil {
namespace {

constexpr uint64_t kMs = 1000000;

// --- the join ---------------------------------------------------------------

TopQuery Query(v1::TopSort sort = v1::TOP_SORT_CPU, bool threads = false) {
  v1::TopRequest req;
  req.set_sort(sort);
  req.set_threads(threads);
  absl::StatusOr<TopQuery> q = ValidateTopRequest(req);
  EXPECT_TRUE(q.ok());
  return *std::move(q);
}

v1::CoveredRange Covered(double seconds) {
  v1::CoveredRange c;
  c.set_start_unix_ns(1000000000000);
  c.set_end_unix_ns(1000000000000 + static_cast<int64_t>(seconds * 1e9));
  c.set_intervals(2);
  return c;
}

struct Fixture {
  CpuUsage cpu;
  v1::MemoryResponse memory;
  v1::SyscallsResponse syscalls;
  v1::DropsResponse drops;
  v1::ListAlertsResponse alerts;

  Fixture() {
    // 2 s covered: 100 is one whole CPU.
    cpu.covered.Add(absl::FromUnixSeconds(1000), absl::FromUnixSeconds(1002));
    cpu.procs[100] = {1600 * kMs, 2, false, "spinner"};
    cpu.threads[100] = {100, 100 * kMs, "spinner"};
    cpu.threads[101] = {100, 1500 * kMs, "spin-worker"};
    cpu.procs[200] = {200 * kMs, 1, false, "db"};
    cpu.threads[200] = {200, 200 * kMs, "db"};
    cpu.procs[7] = {10 * kMs, 1, false, "vigild"};
    cpu.host_busy_ns = 3000 * kMs;
    cpu.host_total_ns = 4000 * kMs;
    cpu.host_cpus = 2;
    v1::ProcessMemory* m = memory.add_processes();
    m->set_pid(200);
    m->set_comm("db");
    m->set_rss_bytes(512 << 20);
    m->set_growth_bytes_per_s(1 << 20);
    m = memory.add_processes();
    m->set_pid(300);  // idle: only in the memory table
    m->set_comm("idle");
    m->set_rss_bytes(1 << 20);
    m = memory.add_processes();
    m->set_pid(7);
    m->set_comm("vigild");
    m->set_rss_bytes(40 << 20);
    memory.set_host_total_bytes(8ull << 30);
    memory.set_host_available_bytes(6ull << 30);
    *syscalls.mutable_covered() = Covered(2);
    v1::ThreadSyscalls* s = syscalls.add_threads();
    s->set_pid(200);
    s->set_tid(200);
    s->set_comm("db");
    s->set_process_comm("db");
    s->set_total_calls(2000);
    s->set_total_errors(100);
    s->set_total_ns(500 * kMs);
    v1::UdpDrop* d = drops.add_drops();
    d->set_pid(300);
    d->set_comm("idle");
    d->set_rate_per_s(12.5);
    d = drops.add_drops();
    d->set_pid(0);  // no owner: nobody's row
    d->set_rate_per_s(99);
    v1::SpinAlert* a = alerts.add_alerts();
    a->set_state(v1::ALERT_STATE_FIRING);
    a->set_kind(v1::ALERT_KIND_SPIN);
    a->set_pid(100);
    a->set_tid(101);
    a = alerts.add_alerts();
    a->set_state(v1::ALERT_STATE_FIRING);
    a->set_kind(v1::ALERT_KIND_MEMORY_GROWTH);
    a->set_pid(200);
    a = alerts.add_alerts();
    a->set_state(v1::ALERT_STATE_RESOLVED);  // not a marker
    a->set_kind(v1::ALERT_KIND_SPIN);
    a->set_pid(300);
    a->set_tid(300);
  }
  TopInputs Inputs() {
    TopInputs in;
    in.cpu = &cpu;
    in.memory = &memory;
    in.syscalls = &syscalls;
    in.drops = &drops;
    in.alerts = &alerts;
    in.agent_pid = 7;
    in.hostname = "h";
    return in;
  }
};

const v1::TopRow* Row(const v1::TopResponse& r, uint32_t pid) {
  for (const v1::TopRow& p : r.processes()) {
    if (p.pid() == pid) return &p;
  }
  return nullptr;
}

TEST(TopJoinTest, JoinsEveryTableByPidAndThread) {
  Fixture f;
  v1::TopResponse r = JoinTop(f.Inputs(), Query(v1::TOP_SORT_CPU, true));
  ASSERT_EQ(r.processes_size(), 4);
  EXPECT_EQ(r.processes(0).pid(), 100u);  // busiest first
  const v1::TopRow* spinner = Row(r, 100);
  EXPECT_DOUBLE_EQ(spinner->cpu_pct(), 80.0);  // 1.6 s of 2 s
  EXPECT_EQ(spinner->cpu_source(), v1::CPU_SOURCE_EXACT);
  ASSERT_EQ(spinner->alerts_size(), 1);
  EXPECT_EQ(spinner->alerts(0), v1::ALERT_KIND_SPIN);
  ASSERT_EQ(spinner->threads_size(), 2);
  EXPECT_EQ(spinner->threads(0).tid(), 101u);  // the spinning thread first
  EXPECT_DOUBLE_EQ(spinner->threads(0).cpu_pct(), 75.0);
  EXPECT_EQ(spinner->threads(0).alerts(0), v1::ALERT_KIND_SPIN);
  EXPECT_EQ(spinner->threads(1).alerts_size(), 0);

  const v1::TopRow* db = Row(r, 200);
  EXPECT_EQ(db->rss_bytes(), 512u << 20);
  EXPECT_DOUBLE_EQ(db->rss_growth_bytes_per_s(), 1 << 20);
  EXPECT_DOUBLE_EQ(db->syscalls_per_s(), 1000);
  EXPECT_DOUBLE_EQ(db->errors_per_s(), 50);
  EXPECT_DOUBLE_EQ(db->syscall_time_pct(), 25);
  EXPECT_EQ(db->alerts(0), v1::ALERT_KIND_MEMORY_GROWTH);

  const v1::TopRow* idle = Row(r, 300);
  ASSERT_NE(idle, nullptr);  // from the memory table alone
  EXPECT_EQ(idle->comm(), "idle");
  EXPECT_DOUBLE_EQ(idle->udp_drops_per_s(), 12.5);
  EXPECT_EQ(idle->alerts_size(), 0);  // resolved alerts are no marker

  EXPECT_DOUBLE_EQ(r.header().host_cpu_pct(), 75);
  EXPECT_DOUBLE_EQ(r.header().agent_cpu_pct(), 0.5);
  EXPECT_EQ(r.header().agent_rss_bytes(), 40u << 20);
  EXPECT_EQ(r.header().host_memory_total_bytes(), 8ull << 30);
}

TEST(TopJoinTest, SortsFiltersAndCuts) {
  Fixture f;
  auto pids = [](const v1::TopResponse& r) {
    std::vector<uint32_t> v;
    for (const v1::TopRow& p : r.processes()) v.push_back(p.pid());
    return v;
  };
  EXPECT_EQ(pids(JoinTop(f.Inputs(), Query(v1::TOP_SORT_RSS))),
            (std::vector<uint32_t>{200, 7, 300, 100}));
  EXPECT_EQ(pids(JoinTop(f.Inputs(), Query(v1::TOP_SORT_PID))),
            (std::vector<uint32_t>{7, 100, 200, 300}));
  EXPECT_EQ(pids(JoinTop(f.Inputs(), Query(v1::TOP_SORT_COMM))),
            (std::vector<uint32_t>{200, 300, 100, 7}));
  EXPECT_EQ(pids(JoinTop(f.Inputs(), Query(v1::TOP_SORT_DROPS)))[0], 300u);
  EXPECT_EQ(pids(JoinTop(f.Inputs(), Query(v1::TOP_SORT_ERRORS)))[0], 200u);

  // A thread's name matches its process.
  v1::TopRequest req;
  req.set_comm_regex("^spin-w");
  absl::StatusOr<TopQuery> q = ValidateTopRequest(req);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(pids(JoinTop(f.Inputs(), *q)), (std::vector<uint32_t>{100}));
  req.set_comm_regex("");
  req.set_pid(200);
  q = ValidateTopRequest(req);
  EXPECT_EQ(pids(JoinTop(f.Inputs(), *q)), (std::vector<uint32_t>{200}));
  req.set_pid(0);
  req.set_top(2);
  q = ValidateTopRequest(req);
  v1::TopResponse r = JoinTop(f.Inputs(), *q);
  EXPECT_EQ(r.processes_size(), 2);
  EXPECT_EQ(r.rows_omitted(), 2u);

  req.set_comm_regex("(");
  EXPECT_EQ(ValidateTopRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_comm_regex("");
  req.set_top(kTopMaxRows + 1);
  EXPECT_EQ(ValidateTopRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TopJoinTest, MissingCapabilitiesLeaveColumnsEmptyWithTheReason) {
  Fixture f;
  TopInputs in = f.Inputs();
  in.cpu = nullptr;
  in.memory = nullptr;
  in.unavailable = {{"cpu", "the cpu capability is off: disabled"},
                    {"memory", "the memory capability is off"}};
  // The profiler's estimate stands in for CPU: 49 samples at 49 Hz = 1 s.
  v1::ProfileResponse prof;
  prof.set_sample_hz(49);
  *prof.mutable_covered() = Covered(2);
  v1::ProfileStack* s = prof.add_stacks();
  s->set_pid(100);
  s->set_tid(101);
  s->set_comm("spin-worker");
  s->set_process_comm("spinner");
  s->set_samples(49);
  in.profile = &prof;
  v1::TopResponse r = JoinTop(in, Query());
  EXPECT_EQ(r.cpu_source(), v1::CPU_SOURCE_PROFILE_ESTIMATE);
  ASSERT_EQ(r.unavailable_size(), 2);
  EXPECT_EQ(r.unavailable(0).columns(), "cpu");
  const v1::TopRow* spinner = Row(r, 100);
  ASSERT_NE(spinner, nullptr);
  EXPECT_NEAR(spinner->cpu_pct(), 50.0, 0.1);
  EXPECT_EQ(spinner->cpu_source(), v1::CPU_SOURCE_PROFILE_ESTIMATE);
  EXPECT_EQ(Row(r, 300)->rss_bytes(), 0u);  // still a row: it drops packets
}

// --- the screen -------------------------------------------------------------

TEST(TopFormatTest, EightyColumnsEscapedNamesMarkersAndDashes) {
  Fixture f;
  f.cpu.procs[100].comm = "ev\x1b[1m";
  TopInputs in = f.Inputs();
  in.unavailable = {{"udpdrops", "the udpdrops capability is off: no BTF"}};
  in.drops = nullptr;
  v1::TopResponse r = JoinTop(in, Query(v1::TOP_SORT_CPU, true));
  cli::TopScreenOptions o;
  o.width = 80;
  o.threads = true;
  cli::TopScreen s = cli::RenderTop(r, o);
  const std::string text = cli::TopScreenText(s);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_TRUE(absl::StrContains(text, "ev\\x1b[1m")) << text;
  EXPECT_TRUE(absl::StrContains(text, "no udpdrops: the udpdrops capability is off")) << text;
  EXPECT_TRUE(absl::StrContains(s.columns, "CPU%")) << s.columns;
  // The spinner's process row, then its threads (PID column shows the tid).
  ASSERT_GE(s.rows.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(s.rows[0], "    100   80.0")) << s.rows[0];
  EXPECT_TRUE(absl::StrContains(s.rows[0], "SPIN")) << s.rows[0];
  EXPECT_TRUE(absl::StartsWith(s.rows[1], "    101   75.0")) << s.rows[1];
  EXPECT_EQ(s.ids[1].tid, 101u);
  EXPECT_EQ(s.ids[0].tid, 0u);
  bool memgrow = false;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const std::string& row = s.rows[i];
    if (s.ids[i].pid == 200 && s.ids[i].tid == 0) {
      memgrow = absl::StrContains(row, "MEMGROW");
      EXPECT_TRUE(absl::StrContains(row, " 512M ")) << row;
      EXPECT_TRUE(absl::StrContains(row, " +1.0M ")) << row;
      EXPECT_TRUE(absl::StrContains(row, " 1000 ")) << row;  // syscalls/s
      EXPECT_TRUE(absl::StrContains(row, " - ")) << row;     // drops: off
    }
  }
  EXPECT_TRUE(memgrow) << text;
  EXPECT_TRUE(absl::StrContains(text, "host cpu  75.0% of 2")) << text;
}

TEST(TopFormatTest, CompactNumbers) {
  EXPECT_EQ(cli::CompactBytes(512), "512");
  EXPECT_EQ(cli::CompactBytes(1536), "1.5K");
  EXPECT_EQ(cli::CompactBytes(300.0 * (1 << 20)), "300M");
  EXPECT_EQ(cli::CompactBytes(-2.0 * (1 << 20)), "-2.0M");
  EXPECT_EQ(cli::CompactRate(0), "0");
  EXPECT_EQ(cli::CompactRate(3.25), "3.2");
  EXPECT_EQ(cli::CompactRate(123456), "123k");
  EXPECT_STREQ(cli::TopSortName(v1::TOP_SORT_SYSCALL_TIME), "SYS%");
}

}  // namespace
}  // namespace vigil
