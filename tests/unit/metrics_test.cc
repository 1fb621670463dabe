#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "agent/metrics/exposition.h"
#include "agent/metrics/syscall_series.h"
#include "agent/syscalls/syscall_table.h"

namespace vigil {
namespace {

TEST(ExpositionTest, LabelValuesAreValidUtf8WithControlsEscaped) {
  Exposition e;
  e.Family("vigil_x_total", "counter", "X things.");
  e.Sample({{"comm", "\xff\x1b[31m"}}, 1);
  EXPECT_EQ(e.text(),
            "# HELP vigil_x_total X things.\n# TYPE vigil_x_total counter\n"
            "vigil_x_total{comm=\"\\\\xff\\\\x1b[31m\"} 1\n");
}

TEST(ExpositionTest, FormatsFamiliesSamplesAndEscapes) {
  Exposition e;
  e.Family("vigil_x_total", "counter", "X things.");
  e.Sample({{"comm", "a\"b\\c\nd"}}, 42);  // under the family's name
  e.Sample("vigil_y", {}, 0.25);
  EXPECT_EQ(e.text(),
            "# HELP vigil_x_total X things.\n# TYPE vigil_x_total counter\n"
            "vigil_x_total{comm=\"a\\\"b\\\\c\\nd\"} 42\nvigil_y 0.25\n");
}

TEST(ExpositionTest, CounterAndGaugeAreFamiliesOfOneSample) {
  Exposition e;
  e.Counter("vigil_a_total", "A things.", 3);
  e.Gauge("vigil_b_bytes", "B bytes.", 1.5);
  e.Sample({{"k", "v"}}, 2);  // a further sample joins the family last started
  EXPECT_EQ(e.text(),
            "# HELP vigil_a_total A things.\n# TYPE vigil_a_total counter\nvigil_a_total 3\n"
            "# HELP vigil_b_bytes B bytes.\n# TYPE vigil_b_bytes gauge\nvigil_b_bytes 1.5\n"
            "vigil_b_bytes{k=\"v\"} 2\n");
}

SyscallInterval OneRecord(const char* pcomm, uint64_t calls) {
  SyscallInterval iv;
  syscall_stats s = {};
  s.calls = calls;
  s.errors = 1;
  s.total_ns = 2000000000;
  strncpy(s.pcomm, pcomm, sizeof(s.pcomm) - 1);
  iv.Append({1, 1, static_cast<uint32_t>(SyscallNumber("read")), 0}, s);
  return iv;
}

TEST(SyscallSeriesTest, CountersAccumulateAndCardinalityIsCapped) {
  SyscallSeries series(2);
  series.Add(OneRecord("a", 5));
  series.Add(OneRecord("a", 7));
  series.Add(OneRecord("b", 1));
  series.Add(OneRecord("c", 3));  // over the cap of 2 names: evicts a
  series.Add(OneRecord("d", 4));  // evicts b
  EXPECT_EQ(series.admitted(), 2u);
  EXPECT_EQ(series.evicted(), 2u);
  Exposition e;
  series.Render(&e);
  const std::string& t = e.text();
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"c\",syscall=\"read\"} 3\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"d\",syscall=\"read\"} 4\n"), std::string::npos)
      << t;
  EXPECT_EQ(t.find("comm=\"a\""), std::string::npos) << t;
  EXPECT_EQ(t.find("comm=\"b\""), std::string::npos) << t;
  EXPECT_EQ(t.find("comm=\"other\""), std::string::npos) << t;
  EXPECT_NE(t.find("vigil_syscall_errors_total{comm=\"c\",syscall=\"read\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("vigil_syscall_seconds_total{comm=\"c\",syscall=\"read\"} 2\n"),
            std::string::npos);
}

TEST(SyscallSeriesTest, CountersAccumulatePerProcess) {
  SyscallSeries series(2);
  series.Add(OneRecord("a", 5));
  series.Add(OneRecord("a", 7));
  EXPECT_EQ(series.admitted(), 1u);
  EXPECT_EQ(series.evicted(), 0u);
  Exposition e;
  series.Render(&e);
  const std::string& t = e.text();
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"a\",syscall=\"read\"} 12\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("vigil_syscall_errors_total{comm=\"a\",syscall=\"read\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("vigil_syscall_seconds_total{comm=\"a\",syscall=\"read\"} 4\n"),
            std::string::npos);
}

bool HasSeries(const SyscallSeries& series, const std::string& comm) {
  Exposition e;
  series.Render(&e);
  return e.text().find("comm=\"" + comm + "\"") != std::string::npos;
}

TEST(SyscallSeriesTest, EvictsTheLeastRecentlySeenProcessWhenFull) {
  constexpr size_t kMax = 5;
  SyscallSeries series(kMax);
  for (size_t i = 0; i <= kMax; ++i) series.Add(OneRecord(("p" + std::to_string(i)).c_str(), 1));
  EXPECT_EQ(series.admitted(), kMax);
  EXPECT_EQ(series.evicted(), 1u);
  EXPECT_FALSE(HasSeries(series, "p0"));  // the oldest seen is gone
  EXPECT_TRUE(HasSeries(series, "p1"));
  EXPECT_TRUE(HasSeries(series, "p5"));  // the newest is present
}

TEST(SyscallSeriesTest, SeeingAProcessAgainRefreshesIt) {
  SyscallSeries series(3);
  series.Add(OneRecord("a", 1));
  series.Add(OneRecord("b", 1));
  series.Add(OneRecord("c", 1));
  series.Add(OneRecord("a", 1));  // a is now the most recently seen; b the least
  series.Add(OneRecord("d", 1));
  EXPECT_EQ(series.evicted(), 1u);
  EXPECT_TRUE(HasSeries(series, "a"));
  EXPECT_FALSE(HasSeries(series, "b"));
  EXPECT_TRUE(HasSeries(series, "c"));
  EXPECT_TRUE(HasSeries(series, "d"));
  Exposition e;
  series.Render(&e);
  EXPECT_NE(e.text().find("vigil_syscalls_total{comm=\"a\",syscall=\"read\"} 2\n"),
            std::string::npos)
      << e.text();

  // An evicted name that comes back starts from zero and evicts the next
  // least recently seen (c).
  series.Add(OneRecord("b", 4));
  EXPECT_EQ(series.evicted(), 2u);
  EXPECT_FALSE(HasSeries(series, "c"));
  Exposition e2;
  series.Render(&e2);
  EXPECT_NE(e2.text().find("vigil_syscalls_total{comm=\"b\",syscall=\"read\"} 4\n"),
            std::string::npos)
      << e2.text();
}

TEST(SyscallSeriesTest, ManyProcessesInOneIntervalStayBounded) {
  SyscallSeries series(2);
  SyscallInterval iv;
  for (int i = 0; i < 10; ++i) {
    syscall_stats s = {};
    s.calls = 1;
    snprintf(s.pcomm, sizeof(s.pcomm), "q%d", i);
    iv.Append({static_cast<uint32_t>(i + 1), static_cast<uint32_t>(i + 1),
               static_cast<uint32_t>(SyscallNumber("read")), 0},
              s);
  }
  series.Add(iv);
  EXPECT_EQ(series.admitted(), 2u);
  EXPECT_EQ(series.evicted(), 8u);
  EXPECT_TRUE(HasSeries(series, "q9"));
}

}  // namespace
}  // namespace vigil
