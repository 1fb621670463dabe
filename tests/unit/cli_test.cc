// The vigil command line, parsed without an agent: global options before or
// after the command, repeated --agent, bad usage as exit 2 with one line.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/runner.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace vigil::cli {
namespace {

struct Parsed {
  std::optional<int> rc;
  std::string out, err;
  GlobalFlags global;
  std::string command;
};

Parsed ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "vigil");
  Cli cli;
  Parsed p;
  p.rc = cli.Parse(args, &p.out, &p.err);
  p.global = cli.global();
  p.command = cli.command();
  return p;
}

TEST(CliParseTest, GlobalOptionsBeforeOrAfterTheCommand) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--agent", "unix:/x", "--timeout", "3s", "--json", "status"},
           {"status", "--agent", "unix:/x", "--timeout", "3s", "--json"},
           {"--agent", "unix:/x", "status", "--json", "--timeout", "3s"}}) {
    Parsed p = ParseArgs(args);
    EXPECT_FALSE(p.rc.has_value()) << p.err;
    EXPECT_EQ(p.command, "status");
    EXPECT_EQ(p.global.agents, std::vector<std::string>{"unix:/x"});
    EXPECT_EQ(p.global.conn.timeout, absl::Seconds(3));
    EXPECT_TRUE(p.global.json);
  }
  // A command's own flags mix with global ones.
  Parsed p =
      ParseArgs({"--json", "syscalls", "--pid", "7", "--agent", "unix:/y", "--by", "process"});
  EXPECT_FALSE(p.rc.has_value()) << p.err;
  EXPECT_EQ(p.command, "syscalls");
  EXPECT_EQ(p.global.agents, std::vector<std::string>{"unix:/y"});
}

TEST(CliParseTest, RepeatedAgentCollectsEveryOne) {
  Parsed p =
      ParseArgs({"--agent", "a:1", "syscalls", "--agent", "b:2", "--agent=c:3", "--insecure"});
  EXPECT_FALSE(p.rc.has_value()) << p.err;
  EXPECT_EQ(p.global.agents, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_TRUE(p.global.conn.insecure);
}

void ExpectUsage(const std::vector<std::string>& args, const std::string& cmd,
                 const std::string& what) {
  Parsed p = ParseArgs(args);
  SCOPED_TRACE(absl::StrJoin(args, " "));
  ASSERT_TRUE(p.rc.has_value());
  EXPECT_EQ(*p.rc, kExitUsage);
  EXPECT_TRUE(p.out.empty()) << p.out;
  const std::string prefix = cmd.empty() ? "vigil: " : "vigil " + cmd + ": ";
  const std::string suffix =
      cmd.empty() ? " (see vigil --help)\n" : " (see vigil " + cmd + " --help)\n";
  EXPECT_EQ(p.err, prefix + what + suffix);
}

// What the user typed comes back cut and escaped: one short line even for
// 100 KB of it, a terminal escape, or a pathological regex.
TEST(CliParseTest, EchoedInputIsCutAndEscaped) {
  const std::string huge(100000, 'x');
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{huge},
                                             {"syscalls", "--" + huge},
                                             {"syscalls", huge},
                                             {"syscalls", "--comm", std::string(5000, '(')},
                                             {"syscalls", "--pid", huge},
                                             {"status", "\x1b]0;pwned\x07"}}) {
    Parsed p = ParseArgs(args);
    ASSERT_TRUE(p.rc.has_value());
    EXPECT_EQ(*p.rc, kExitUsage);
    EXPECT_LT(p.err.size(), 300u) << p.err.substr(0, 300);
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1);
    EXPECT_EQ(p.err.find('\x1b'), std::string::npos);
  }
}

TEST(CliParseTest, BadUsageIsExitTwoWithOneLine) {
  ExpectUsage({"status", "--no-such-flag"}, "status", "unknown option \"--no-such-flag\"");
  ExpectUsage({"--no-such-flag", "status"}, "status", "unknown option \"--no-such-flag\"");
  ExpectUsage({"--no-such-flag"}, "", "unknown option \"--no-such-flag\"");
  ExpectUsage({"bogus"}, "", "unknown command \"bogus\"");
  ExpectUsage({"help", "bogus"}, "", "unknown command \"bogus\"");
  ExpectUsage({"status", "extra"}, "status", "unexpected argument \"extra\"");
  ExpectUsage({"syscalls", "--pid"}, "syscalls", "--pid needs a value");
  ExpectUsage({"syscalls", "--pid", "x"}, "syscalls", "--pid \"x\": expected a positive integer");
  ExpectUsage({"syscalls", "--by", "host"}, "syscalls",
              "--by \"host\": expected thread, process or syscall");
  ExpectUsage({"syscalls", "--until", "1m"}, "syscalls", "--until needs --since");
  ExpectUsage({"hot", "--user-only", "--kernel-only"}, "hot",
              "--user-only and --kernel-only exclude each other");
  ExpectUsage({"--agent", "unix:/x"}, "", "no command given");
  for (const char* cmd : {"hot", "profile", "flamegraph"}) {
    ExpectUsage({cmd, "--kind", "heap"}, cmd, "--kind \"heap\": expected cpu or memory");
    ExpectUsage({cmd, "--kind", "MEMORY"}, cmd, "--kind \"MEMORY\": expected cpu or memory");
  }
}

TEST(CliParseTest, KindIsAProfileFilterDocumentedInHelp) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"hot", "--kind", "memory"},
           {"profile", "--kind", "memory", "--format", "pprof", "-o", "m.pb.gz"},
           {"flamegraph", "--kind", "cpu", "-o", "m.html"}}) {
    Parsed p = ParseArgs(args);
    EXPECT_FALSE(p.rc.has_value()) << args[0] << ": " << p.err;
  }
  for (const char* cmd : {"hot", "profile", "flamegraph"}) {
    Parsed h = ParseArgs({cmd, "--help"});
    ASSERT_TRUE(h.rc.has_value());
    EXPECT_TRUE(absl::StrContains(h.out, "--kind cpu|memory")) << h.out;
    EXPECT_TRUE(absl::StrContains(h.out, "page faults")) << h.out;
  }
  ProfileFilter f;
  f.kind = v1::PROFILE_KIND_MEMORY;
  v1::HotRequest hot;
  ApplyProfileFilter(f, &hot);
  EXPECT_EQ(hot.kind(), v1::PROFILE_KIND_MEMORY);
  v1::ProfileRequest prof;
  ApplyProfileFilter(ProfileFilter{}, &prof);
  EXPECT_EQ(prof.kind(), v1::PROFILE_KIND_CPU);
}

TEST(CliParseTest, TimeoutInfIsBadUsageNotUnreachable) {
  ExpectUsage({"status", "--timeout", "inf"}, "status",
              "--timeout \"inf\": expected a finite duration, at most 1h");
  ExpectUsage({"--timeout", "inf", "status"}, "status",
              "--timeout \"inf\": expected a finite duration, at most 1h");
  ExpectUsage({"status", "--timeout", "-5s"}, "status",
              "--timeout \"-5s\": expected a positive duration like 1s, 500ms, 10m");
  ExpectUsage({"syscalls", "--watch", "--every", "1ms"}, "syscalls",
              "--every \"1ms\": expected a duration of at least 100ms like 1s, 10m");
}

TEST(CliParseTest, HelpIsExitZeroOnStdout) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"help"},
                                             {"status", "--help"},
                                             {"syscalls", "-h"},
                                             {"help", "drops"},
                                             {"--agent", "unix:/x", "hot", "--help"}}) {
    Parsed p = ParseArgs(args);
    SCOPED_TRACE(absl::StrJoin(args, " "));
    ASSERT_TRUE(p.rc.has_value());
    EXPECT_EQ(*p.rc, kExitOk);
    EXPECT_TRUE(absl::StartsWith(p.out, "usage: vigil ")) << p.out;
    EXPECT_TRUE(absl::StrContains(p.out, "--agent ADDR")) << p.out;
    EXPECT_TRUE(p.err.empty()) << p.err;
  }
  Parsed p = ParseArgs({"--help"});
  for (const char* cmd :
       {"syscalls", "status", "drops", "hot", "profile", "flamegraph", "alerts"}) {
    EXPECT_TRUE(absl::StrContains(p.out, std::string("\n  ") + cmd + " ")) << cmd;
  }
}

// The built binary: global option before the command reaches the agent step
// (today's refusal was `unknown command "--agent"`), and usage is exit 2.
// Large map calls: the compact line skips the leaf's own module (libc's
// malloc) to the code that asked; the full view lists every frame; no calls
// and calls not recorded each say so.
TEST(FormatTest, LargeMapCallsCompactSkipsTheLeafsModule) {
  v1::LargeMapCalls m;
  m.set_min_bytes(1 << 20);
  m.set_mapped_bytes(64 << 20);
  v1::MapCallStack* s = m.add_stacks();
  s->set_call(v1::MAP_CALL_MMAP);
  s->set_calls(2);
  s->set_bytes(64 << 20);
  for (const char* name : {"__mmap64", "sysmalloc", "__libc_malloc"}) {
    v1::ProfileFrame* f = s->add_frames();
    f->set_name(name);
    f->set_module("/lib/libc.so.6");
  }
  for (const char* name : {"rd_kafka_buf_new", "rd_kafka_new", "App::Start", "main"}) {
    v1::ProfileFrame* f = s->add_frames();
    f->set_name(name);
    f->set_module("/usr/bin/app");
  }
  EXPECT_EQ(cli::FormatLargeMapCalls(m, /*compact=*/true, "  "),
            "  large map calls (each >= 1.0 MiB): 64.0 MiB mapped, 0 B unmapped\n"
            "    64.0 MiB       2 mmap        __mmap64 < ... < rd_kafka_buf_new < rd_kafka_new < "
            "App::Start < ...\n");
  const std::string full = cli::FormatLargeMapCalls(m, /*compact=*/false, "");
  EXPECT_TRUE(absl::StrContains(full, "sysmalloc  /lib/libc.so.6\n")) << full;
  EXPECT_TRUE(absl::StrContains(full, "main  /usr/bin/app\n")) << full;
  m.clear_stacks();
  EXPECT_EQ(cli::FormatLargeMapCalls(m, true, ""),
            "large map calls: no mmap/munmap/brk call of 1.0 MiB or more in the range\n");
  m.set_unavailable("not recorded (vigild --profile-map-min-bytes 0)");
  EXPECT_EQ(cli::FormatLargeMapCalls(m, true, ""),
            "large map calls: none, not recorded (vigild --profile-map-min-bytes 0)\n");
}

TEST(CliBinaryTest, GlobalOptionBeforeCommandAndExitCodes) {
  test::TempDir dir;
  const std::string nobody = "unix:" + dir.path() + "/nobody.sock";
  test::CommandResult c =
      test::RunCommand({test::VigilPath(), "--agent", nobody, "--timeout", "1s", "status"});
  EXPECT_EQ(c.exit_code, kExitFailed) << c.err;
  EXPECT_TRUE(absl::StrContains(c.err, "unreachable")) << c.err;

  c = test::RunCommand({test::VigilPath(), "status", "--timeout", "inf", "--agent", nobody});
  EXPECT_EQ(c.exit_code, kExitUsage) << c.err;
  EXPECT_EQ(c.err,
            "vigil status: --timeout \"inf\": expected a finite duration, at most 1h "
            "(see vigil status --help)\n");

  c = test::RunCommand({test::VigilPath(), "drops", "--bogus"});
  EXPECT_EQ(c.exit_code, kExitUsage);
  EXPECT_EQ(c.err, "vigil drops: unknown option \"--bogus\" (see vigil drops --help)\n");
}

}  // namespace
}  // namespace vigil::cli
