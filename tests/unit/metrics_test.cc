#include <gtest/gtest.h>

#include <cstring>

#include "agent/metrics/exposition.h"
#include "agent/metrics/syscall_series.h"
#include "agent/syscalls/syscall_table.h"

namespace vigil {
namespace {

TEST(ExpositionTest, FormatsFamiliesSamplesAndEscapes) {
  Exposition e;
  e.Family("vigil_x_total", "counter", "X things.");
  e.Sample("vigil_x_total", {{"comm", "a\"b\\c\nd"}}, 42);
  e.Sample("vigil_y", 0.25);
  EXPECT_EQ(e.text(),
            "# HELP vigil_x_total X things.\n# TYPE vigil_x_total counter\n"
            "vigil_x_total{comm=\"a\\\"b\\\\c\\nd\"} 42\nvigil_y 0.25\n");
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
  series.Add(OneRecord("c", 3));  // over the cap of 2 names
  series.Add(OneRecord("d", 4));
  EXPECT_EQ(series.admitted(), 2u);
  EXPECT_EQ(series.overflowed(), 2u);
  Exposition e;
  series.Render(&e);
  const std::string& t = e.text();
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"a\",syscall=\"read\"} 12\n"), std::string::npos) << t;
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"b\",syscall=\"read\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("vigil_syscalls_total{comm=\"other\",syscall=\"read\"} 7\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("comm=\"c\""), std::string::npos) << t;
  EXPECT_NE(t.find("vigil_syscall_errors_total{comm=\"a\",syscall=\"read\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("vigil_syscall_seconds_total{comm=\"a\",syscall=\"read\"} 4\n"), std::string::npos);
}

}  // namespace
}  // namespace vigil
