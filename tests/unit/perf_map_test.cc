// /tmp/perf-PID.map as a hostile process could write it.
#include "agent/profile/perf_map.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

TEST(PerfMapTest, ParsesJitLinesSortedAndSkipsGarbage) {
  const std::string text =
      "7f0000002000 10 Builtin:Call\n"
      "0x7f0000001000 0x40 LazyCompile:~main /tmp/x.js:1  \n"
      "not a line\n"
      "7f0000003000 0 empty\n"
      "ffffffffffffff00 1000 wraps\n"
      "7f0000004000 20\n"
      "7f0000005000 zz bad size\n"
      "12345678901234567 10 too long\n";
  std::vector<PerfMapSymbol> s = ParsePerfMap(text, PerfMapLimits{});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].start, 0x7f0000001000u);
  EXPECT_EQ(s[0].size, 0x40u);
  EXPECT_EQ(s[0].name, "LazyCompile:~main /tmp/x.js:1");
  EXPECT_EQ(s[1].name, "Builtin:Call");
}

TEST(PerfMapTest, SymbolsAndNamesAreBounded) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += absl::StrCat(absl::Hex(0x1000 * (i + 1)), " 10 f", i, "\n");
  text += "900000 10 " + std::string(100000, 'n') + "\n";
  PerfMapLimits l;
  l.max_symbols = 50;
  l.max_name = 8;
  EXPECT_EQ(ParsePerfMap(text, l).size(), 50u);
  l.max_symbols = 1000;
  std::vector<PerfMapSymbol> s = ParsePerfMap(text, l);
  ASSERT_EQ(s.size(), 101u);
  EXPECT_EQ(s.back().name.size(), 8u);
}

TEST(PerfMapTest, AFifoOrADeviceIsNotRead) {
  test::TempDir dir;
  const std::string fifo = dir.path() + "/perf-1.map";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string out;
  const absl::Time t0 = absl::Now();
  EXPECT_FALSE(ReadPerfMapFile(fifo, 1 << 20, &out));  // and does not block
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  const std::string link = dir.path() + "/perf-2.map";
  ASSERT_EQ(symlink("/dev/zero", link.c_str()), 0);
  EXPECT_FALSE(ReadPerfMapFile(link, 1 << 20, &out));
  const std::string big = dir.path() + "/perf-3.map";
  FILE* f = fopen(big.c_str(), "w");
  ASSERT_NE(f, nullptr);
  for (int i = 0; i < 1000; ++i) fputs("7f0000001000 40 name\n", f);
  fclose(f);
  ASSERT_TRUE(ReadPerfMapFile(big, 100, &out));
  EXPECT_EQ(out.size(), 100u);  // at most max_bytes
}

}  // namespace
}  // namespace vigil
