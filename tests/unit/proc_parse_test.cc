// The /proc and cgroupfs parsers as pure functions (also driven by
// tests/fuzz/proc_fuzz): maps, stat, mountinfo, cgroup counters, fd links.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "agent/memory/cgroup_reader.h"
#include "agent/profile/proc_maps.h"
#include "agent/profile/symbolizer.h"
#include "agent/udpdrops/owner_cache.h"

namespace vigil {
namespace {

std::string Stat(const std::string& comm, const std::string& start_time = "777123") {
  return "4242 (" + comm + ") S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 " + start_time +
         " 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
}

TEST(ProcParseTest, StatStartTimeWhateverTheName) {
  EXPECT_EQ(ParseStatStartTime(Stat("bash")), 777123u);
  EXPECT_EQ(ParseStatStartTime(Stat("a b) c) 9 9 9")), 777123u);
  EXPECT_EQ(ParseStatStartTime(Stat(")")), 777123u);
  // prctl(PR_SET_NAME) takes any byte but NUL: the first line alone lost
  // the fields.
  EXPECT_EQ(ParseStatStartTime(Stat("x\ny) 1 2")), 777123u);
  EXPECT_EQ(ParseStatStartTime(Stat("bash", "x")), std::nullopt);
  EXPECT_EQ(ParseStatStartTime("4242 (bash) S 1 2 3"), std::nullopt);
  EXPECT_EQ(ParseStatStartTime("no parenthesis at all"), std::nullopt);
  EXPECT_EQ(ParseStatStartTime(""), std::nullopt);
}

// Found by tests/fuzz/proc_fuzz: a stat that ends at the name's ')' made
// substr(close + 2) throw std::out_of_range, which ended vigild.
TEST(ProcParseTest, StatCutAfterTheNameIsNotAnError) {
  EXPECT_EQ(ParseStatStartTime("1 (x)"), std::nullopt);
  EXPECT_EQ(ParseStatStartTime("1 (x) "), std::nullopt);
}

TEST(ProcParseTest, FileMappingsKeepExecutableNamedOnes) {
  const std::vector<FileMapping> m = ParseFileMappings(
      "55d0c0a00000-55d0c0a21000 r-xp 00002000 fe:01 1311 /usr/bin/my prog (deleted)\n"
      "55d0c0a21000-55d0c0a30000 r--p 00023000 fe:01 1311 /usr/bin/my prog (deleted)\n"
      "7f1000000000-7f1000001000 r-xp 00000000 00:00 0 \n"
      "7ffd5a1f3000-7ffd5a1f5000 r-xp 00000000 00:00 0                  [vdso]\n"
      "1000-2000 r 0 1:2 3 /short-perms\n"
      "garbage\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].start, 0x55d0c0a00000u);
  EXPECT_EQ(m[0].end, 0x55d0c0a21000u);
  EXPECT_EQ(m[0].offset, 0x2000u);
  EXPECT_EQ(m[0].dev, (uint64_t{0xfe} << 32) | 1);
  EXPECT_EQ(m[0].ino, 1311u);
  EXPECT_EQ(m[0].path, "/usr/bin/my prog (deleted)");
  EXPECT_EQ(m[1].path, "[vdso]");
}

TEST(ProcParseTest, MemoryMountsV1BeatsV2) {
  const MemoryMounts m = ParseMemoryMounts(
      "25 1 0:22 / /sys rw - sysfs sysfs rw\n"
      "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
      "31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      "32 25 0:27 /sub /elsewhere rw - cgroup2 cgroup2 rw\n");
  EXPECT_EQ(m.v1, "/sys/fs/cgroup/memory");
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
  EXPECT_EQ(ParseMemoryMounts("").v2, "");
  EXPECT_EQ(ParseMemoryMounts("1 2 3 / /x - cgroup2").v2, "");  // too few fields
}

TEST(ProcParseTest, CgroupReaderOpensTheV1MemoryMount) {
  char path[] = "/tmp/vigil-mountinfo-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text =
      "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  absl::StatusOr<CgroupReader> r = CgroupReader::Open(16, path);
  unlink(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->v2());
  EXPECT_EQ(r->mount(), "/sys/fs/cgroup/memory");
  EXPECT_FALSE(CgroupReader::Open(16, "/nonexistent/mountinfo").ok());
}

TEST(ProcParseTest, CgroupBytes) {
  EXPECT_EQ(ParseCgroupBytes("123456789\n"), 123456789u);
  EXPECT_EQ(ParseCgroupBytes("max\n"), 0u);
  EXPECT_EQ(ParseCgroupBytes("18446744073709551616"), std::nullopt);
  EXPECT_EQ(ParseCgroupBytes("-1"), std::nullopt);
  EXPECT_EQ(ParseCgroupBytes(""), std::nullopt);
}

TEST(ProcParseTest, SocketInode) {
  EXPECT_EQ(ParseSocketInode("socket:[123456]"), 123456u);
  EXPECT_EQ(ParseSocketInode("socket:[18446744073709551615]"), UINT64_MAX);
  EXPECT_EQ(ParseSocketInode("socket:[]"), std::nullopt);
  EXPECT_EQ(ParseSocketInode("pipe:[123]"), std::nullopt);
  EXPECT_EQ(ParseSocketInode("socket:[12"), std::nullopt);
  EXPECT_EQ(ParseSocketInode("/tmp/socket:[1]"), std::nullopt);
}

// The parsers in place: the symbolizer reads this process's maps and stat.
TEST(ProcParseTest, SymbolizerReadsThisProcess) {
  ProcessIdentity id;
  ASSERT_TRUE(NewProcProcessInfo()->Identify(getpid(), &id));
  EXPECT_GT(id.start_time, 0u);
  EXPECT_GT(id.exe_inode, 0u);
  // The process's symbols point into the symbolizer: it must outlive them.
  std::unique_ptr<Symbolizer> symbolizer = NewBccSymbolizer(16 << 20);
  std::unique_ptr<ProcessSymbols> syms = symbolizer->OpenProcess(getpid());
  const Frame f = syms->Resolve(reinterpret_cast<uint64_t>(&getppid));
  EXPECT_NE(f.module().find("libc"), std::string::npos) << f.module();
  EXPECT_NE(f.name().find("getppid"), std::string::npos) << f.name();
}

}  // namespace
}  // namespace vigil
