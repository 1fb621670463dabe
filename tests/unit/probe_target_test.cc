// vigil probe's target parsing, library matching and ELF symbol search,
// without BPF.
#include "agent/probe/probe_target.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace vigil {
namespace {

TEST(ProbeSpecTest, Forms) {
  absl::StatusOr<ProbeSpec> s = ParseProbeSpec("malloc");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->lib.empty());
  EXPECT_EQ(s->function, "malloc");
  EXPECT_FALSE(s->glob());

  s = ParseProbeSpec("libc:mall*");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->lib, "libc");
  EXPECT_EQ(s->function, "mall*");
  EXPECT_TRUE(s->glob());

  // C++ "::" is part of the name, not the LIB separator.
  s = ParseProbeSpec("ns::Class::method");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->lib.empty());
  EXPECT_EQ(s->function, "ns::Class::method");
  s = ParseProbeSpec("/opt/lib/libx.so:ns::f");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->lib, "/opt/lib/libx.so");
  EXPECT_EQ(s->function, "ns::f");

  s = ParseProbeSpec("usdt:python3.11:python:gc__start");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->usdt);
  EXPECT_EQ(s->lib, "python3.11");
  EXPECT_EQ(s->provider, "python");
  EXPECT_EQ(s->probe, "gc__start");

  for (const char* bad : {"", "usdt:a:b", "usdt::p:n", "libc:", ":f"}) {
    EXPECT_EQ(ParseProbeSpec(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ProbeLibraryTest, MatchesPathOrName) {
  std::vector<FileMapping> maps(3);
  maps[0].path = "/usr/bin/python3.11";
  maps[1].path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  maps[2].path = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
  EXPECT_EQ(*MatchLibrary(maps, "libc"), maps[1].path);
  EXPECT_EQ(*MatchLibrary(maps, "libc.so.6"), maps[1].path);
  EXPECT_EQ(*MatchLibrary(maps, maps[2].path), maps[2].path);
  EXPECT_EQ(*MatchLibrary(maps, "python3.11"), maps[0].path);
  EXPECT_EQ(MatchLibrary(maps, "libz").status().code(), absl::StatusCode::kNotFound);
  maps.push_back(maps[1]);
  maps.back().path = "/opt/other/libc.so.6";
  EXPECT_EQ(MatchLibrary(maps, "libc").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProbeElfTest, FindsDynsymFunctionsOfStrippedLibc) {
  const char* libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  absl::StatusOr<std::vector<ElfFunction>> f = FindElfFunctions(libc, "getppid", false);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "getppid");
  EXPECT_NE((*f)[0].file_offset, 0u);
  f = FindElfFunctions(libc, "*", true);
  ASSERT_TRUE(f.ok());
  EXPECT_GT(f->size(), 1000u);  // what probe-max-functions refuses
  // Bounded: no more symbols read than asked.
  f = FindElfFunctions(libc, "*", true, 10);
  ASSERT_TRUE(f.ok());
  EXPECT_LE(f->size(), 10u);
}

TEST(ProbeElfTest, NotElf) {
  test::TempDir dir;
  const std::string path = dir.path() + "/x.so";
  std::ofstream(path) << "#!/bin/sh\necho not elf\n";
  absl::Status s = FindElfFunctions(path, "f", false).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("is not an ELF file"), std::string::npos) << s;
}

}  // namespace
}  // namespace vigil
