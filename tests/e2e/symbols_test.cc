// Stripped binaries named without a local debug file: from MiniDebugInfo
// (.gnu_debugdata), and from a real debuginfod server (elfutils'
// `debuginfod -F`) serving the debug file the build split off
// (tests/workloads/split_debug.sh). The symbolizer-level tests need no
// privileges; the vigild test needs BPF.
#include <arpa/inet.h>
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/profile/elf_info.h"
#include "agent/profile/symbolizer.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {
namespace {

using test::CommandResult;
using test::RunCommand;

constexpr char kFn[] = "vigil_stripped_spin";

std::string Stripped() { return test::StrippedSpinDir() + "/stripped"; }
std::string Mini() { return test::StrippedSpinDir() + "/minidebuginfo"; }
std::string DebugDir() { return test::StrippedSpinDir() + "/srv"; }

std::string BuildIdOf(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  absl::StatusOr<ElfInfo> info = ReadElfInfo(fd);
  close(fd);
  return info.ok() ? BuildIdHex(info->build_id) : "";
}

// The workload running in the background: its pid and its burner's address.
class Running {
 public:
  explicit Running(const std::string& bin, const std::string& seconds = "30") {
    const std::string cmd = absl::StrCat("exec ", bin, " ", seconds);
    pipe_ = popen(cmd.c_str(), "r");
    if (pipe_ == nullptr) return;
    char line[128];
    for (int i = 0; i < 2 && fgets(line, sizeof(line), pipe_) != nullptr; ++i) {
      std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ');
      if (f.size() != 2) continue;
      if (f[0] == "pid") (void)absl::SimpleAtoi(f[1], &pid_);
      if (f[0] == "fn") fn_ = strtoull(f[1].c_str(), nullptr, 16);
    }
  }
  ~Running() {
    if (pid_ > 0) kill(static_cast<pid_t>(pid_), SIGKILL);
    if (pipe_ != nullptr) pclose(pipe_);
  }
  uint32_t pid() const { return pid_; }
  uint64_t fn() const { return fn_; }

 private:
  FILE* pipe_ = nullptr;
  uint32_t pid_ = 0;
  uint64_t fn_ = 0;
};

// elfutils' debuginfod serving one directory on a free loopback port.
class ScopedDebuginfod {
 public:
  explicit ScopedDebuginfod(const std::string& serve) {
    port_ = test::FreeLoopbackPort();
    const std::string log = dir_.path() + "/debuginfod.log";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string db = dir_.path() + "/db.sqlite";
      const std::string port = std::to_string(port_);
      execlp("debuginfod", "debuginfod", "-F", serve.c_str(), "-d", db.c_str(), "-p", port.c_str(),
             "-t", "0", "-g", "0", static_cast<char*>(nullptr));
      _exit(127);
    }
    log_path_ = log;
  }
  ~ScopedDebuginfod() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  // Until the server has indexed build_id (it scans -F at start).
  bool WaitServes(const std::string& build_id) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(1);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (auto r = c.Get(absl::StrCat("/buildid/", build_id, "/debuginfo").c_str());
          r && r->status == 200) {
        return true;
      }
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return false;  // died
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }
  std::string log() const {
    CommandResult c = RunCommand({"tail", "-n", "20", log_path_});
    return c.out;
  }

 private:
  test::TempDir dir_;
  std::string log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};

bool HaveTool(const char* tool) {
  return RunCommand({"sh", "-c", absl::StrCat("command -v ", tool)}).exit_code == 0;
}

// Ground truth: /proc/kallsyms itself. On a kernel built with function
// padding, "__pfx_NAME" sits 16 bytes before NAME; the symbolizer stores
// NAME once for both and must still tell them apart.
TEST(KernelSymbolsTest, NamesFunctionsAndTheirPaddingAsKallsymsDoes) {
  if (geteuid() != 0) VIGIL_SKIP_OR_FAIL("kallsyms hides addresses from non-root");
  std::ifstream f("/proc/kallsyms");
  std::string line, prev_name;
  uint64_t prev_addr = 0, fn_addr = 0, pfx_addr = 0;
  std::string fn;
  while (std::getline(f, line)) {
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (w.size() != 3 || (w[1] != "T" && w[1] != "t")) continue;  // core kernel text only
    uint64_t addr = 0;
    if (!absl::SimpleHexAtoi(w[0], &addr) || addr == 0) continue;
    if (prev_name == "__pfx_" + w[2] && addr == prev_addr + 16 && fn.empty()) {
      fn = w[2];
      fn_addr = addr;
      pfx_addr = prev_addr;
    }
    prev_name = w[2];
    prev_addr = addr;
  }
  ASSERT_FALSE(fn.empty()) << "no __pfx_NAME before NAME in /proc/kallsyms (a kernel without "
                              "function padding; this host's has it)";
  std::unique_ptr<Symbolizer> s = NewBccSymbolizer(SymbolCacheConfig{});
  const Frame at_fn = s->ResolveKernel(fn_addr + 4);
  EXPECT_EQ(at_fn.name(), fn);
  EXPECT_EQ(at_fn.offset, 4u);
  EXPECT_EQ(at_fn.module(), "[kernel]");
  const Frame at_pfx = s->ResolveKernel(pfx_addr + 4);
  EXPECT_EQ(at_pfx.name(), "__pfx_" + fn);
  EXPECT_EQ(at_pfx.offset, 4u);
}

TEST(MiniDebugInfoSymbolsTest, StrippedBinaryIsNamedFromGnuDebugdata) {
  if (!std::filesystem::exists(Mini())) {
    VIGIL_SKIP_OR_FAIL("no MiniDebugInfo workload: xz was not found when building (xz-utils)");
  }
  // The copy really is stripped and carries .gnu_debugdata.
  CommandResult nm = RunCommand({"nm", Mini()});
  ASSERT_FALSE(absl::StrContains(nm.out, kFn)) << "not stripped: " << nm.out;
  CommandResult sections = RunCommand({"objdump", "-h", Mini()});
  ASSERT_TRUE(absl::StrContains(sections.out, ".gnu_debugdata")) << sections.out;

  std::unique_ptr<Symbolizer> s = NewBccSymbolizer(size_t{16} << 20);
  {
    Running w(Mini());
    ASSERT_NE(w.pid(), 0u);
    Frame f = s->OpenProcess(w.pid())->Resolve(w.fn() + 4);
    EXPECT_EQ(f.name(), kFn) << f.DisplayName();
    EXPECT_EQ(f.offset, 4u);
  }
  // The control: the same program stripped without it stays unnamed (so
  // the name above came from .gnu_debugdata).
  {
    Running w(Stripped());
    ASSERT_NE(w.pid(), 0u);
    Frame f = s->OpenProcess(w.pid())->Resolve(w.fn() + 4);
    EXPECT_FALSE(f.named()) << f.name();
    EXPECT_TRUE(absl::EndsWith(f.module(), "/stripped")) << f.module();
  }
}

class DebuginfodSymbolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTool("debuginfod")) {
      VIGIL_SKIP_OR_FAIL(
          "debuginfod (Debian package debuginfod) is not installed: "
          "deploy/install-deps.sh --test");
    }
    build_id_ = BuildIdOf(Stripped());
    ASSERT_EQ(build_id_.size(), 40u) << "no build-id in " << Stripped();
    // Found nowhere locally: no debuglink, nothing under /usr/lib/debug.
    ASSERT_FALSE(std::filesystem::exists(absl::StrCat(
        "/usr/lib/debug/.build-id/", build_id_.substr(0, 2), "/", build_id_.substr(2), ".debug")));
    CommandResult sections = RunCommand({"objdump", "-h", Stripped()});
    ASSERT_FALSE(absl::StrContains(sections.out, ".gnu_debuglink")) << sections.out;
    unsetenv("DEBUGINFOD_URLS");
    server_ = std::make_unique<ScopedDebuginfod>(DebugDir());
    ASSERT_TRUE(server_->WaitServes(build_id_)) << server_->log();
  }
  void TearDown() override { unsetenv("DEBUGINFOD_URLS"); }

  std::string build_id_;
  std::unique_ptr<ScopedDebuginfod> server_;
  test::TempDir cache_;
};

TEST_F(DebuginfodSymbolsTest, SymbolCacheNamesFramesOnceTheDebugFileArrives) {
  Running w(Stripped());
  ASSERT_NE(w.pid(), 0u);
  SymbolCacheConfig config;
  config.debuginfod.urls = server_->url();
  config.debuginfod.cache_dir = cache_.path() + "/debuginfod";
  SymbolCache cache(NewBccSymbolizer(config), NewProcProcessInfo(), config);
  // First interval: unnamed (the fetch runs in the background).
  cache.BeginInterval();
  FramePtr first = cache.User(w.pid(), w.fn() + 4);
  cache.EndInterval();
  EXPECT_FALSE(first->named()) << first->name();
  // A later interval names the same address: the fetched file is read and
  // the memoized unnamed frame forgotten.
  FramePtr later;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::SleepFor(absl::Milliseconds(100));
    cache.BeginInterval();
    later = cache.User(w.pid(), w.fn() + 4);
    cache.EndInterval();
  } while (!later->named() && absl::Now() < deadline);
  EXPECT_EQ(later->name(), kFn) << later->DisplayName() << "\n" << server_->log();
  EXPECT_EQ(later->offset, 4u);
  const DebuginfodStats st = cache.stats().debuginfod;
  EXPECT_TRUE(st.enabled);
  EXPECT_EQ(st.fetched, 1u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_GT(st.cache_bytes, 0u);
}

TEST_F(DebuginfodSymbolsTest, UnknownBuildIdFailsOnceAndIsNegativeCached) {
  // The server is asked for a build it does not have (the MiniDebugInfo
  // copy shares the build-id; a second fetcher with a fake id instead).
  DebuginfodConfig c;
  c.urls = server_->url();
  c.cache_dir = cache_.path() + "/neg";
  ASSERT_TRUE(PrepareCacheDir(c.cache_dir).ok());
  absl::StatusOr<FetchFn> fetch = NewLibdebuginfodFetch(c, server_->url());
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  DebuginfodFetcher f(c, *std::move(fetch));
  const std::string missing(40, 'e');
  f.Request(missing);
  f.WaitIdle();
  EXPECT_EQ(f.Request(missing).state, DebuginfodFetcher::State::kFailed);
  EXPECT_EQ(f.stats().failed, 1u);
  EXPECT_EQ(f.stats().negative_hits, 1u);
  // And the real one is fetched, checked against its build-id.
  f.Request(build_id_);
  f.WaitIdle();
  DebuginfodFetcher::Answer a = f.Peek(build_id_);
  ASSERT_EQ(a.state, DebuginfodFetcher::State::kReady) << server_->log();
  EXPECT_EQ(BuildIdOf(a.path), build_id_);
}

TEST_F(DebuginfodSymbolsTest, AFileOverTheDownloadBoundIsRefused) {
  DebuginfodConfig c;
  c.cache_dir = cache_.path() + "/small";
  c.max_download_bytes = 4096;  // the debug file is ~10 KB
  ASSERT_LT(c.max_download_bytes, std::filesystem::file_size(DebugDir() + "/stripped_spin.debug"));
  ASSERT_TRUE(PrepareCacheDir(c.cache_dir).ok());
  absl::StatusOr<FetchFn> fetch = NewLibdebuginfodFetch(c, server_->url());
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  DebuginfodFetcher f(c, *std::move(fetch));
  f.Request(build_id_);
  f.WaitIdle();
  EXPECT_EQ(f.Peek(build_id_).state, DebuginfodFetcher::State::kFailed);
  EXPECT_EQ(f.stats().failed, 1u);
  EXPECT_EQ(f.stats().fetched, 0u);
  // Nothing of it was kept (libdebuginfod may leave an empty miss marker).
  for (const auto& e : std::filesystem::recursive_directory_iterator(c.cache_dir)) {
    if (e.is_regular_file() && e.path().parent_path() != c.cache_dir) {
      EXPECT_EQ(e.file_size(), 0u) << e.path();
    }
  }
}

TEST(DebuginfodTimeoutTest, AStalledServerIsAbandonedWithinTheTimeout) {
  // A server that accepts connections (the kernel's backlog does) and never
  // answers.
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(s, 16), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  test::TempDir dir;
  DebuginfodConfig c;
  c.cache_dir = dir.path() + "/cache";
  c.timeout = absl::Seconds(2);
  ASSERT_TRUE(PrepareCacheDir(c.cache_dir).ok());
  absl::StatusOr<FetchFn> fetch =
      NewLibdebuginfodFetch(c, absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port)));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  const absl::Time began = absl::Now();
  {
    DebuginfodFetcher f(c, *std::move(fetch));
    f.Request(std::string(40, 'a'));
    f.WaitIdle();
    EXPECT_EQ(f.stats().failed, 1u);
  }
  const absl::Duration took = absl::Now() - began;
  EXPECT_GE(took, absl::Seconds(1)) << "it did not wait for the server at all";
  EXPECT_LT(took, absl::Seconds(8)) << "a 2 s timeout took " << took;
  close(s);
  unsetenv("DEBUGINFOD_URLS");
}

// `vigil hot` over a real agent: without debuginfod the stripped burner is
// module+offset; with DEBUGINFOD_URLS in vigild's environment it is named.
std::vector<std::string> HotFunctions(const test::ScopedVigild& agent, uint32_t pid,
                                      absl::Time after) {
  std::vector<std::string> names;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  do {
    CommandResult c = RunCommand({test::VigilPath(), "hot", "--pid", std::to_string(pid),
                                  "--user-only", "--json", "--agent", agent.agent()});
    EXPECT_EQ(c.exit_code, 0) << c.err;
    v1::HotResponse r;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(c.out, &r).ok()) << c.out;
    if (r.covered().end_unix_ns() > absl::ToUnixNanos(after)) {
      for (const auto& f : r.functions()) names.push_back(f.name());
      return names;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ADD_FAILURE() << "the agent never covered " << after;
  return names;
}

uint32_t RunToCompletion(const std::string& bin, const std::string& seconds) {
  CommandResult c = RunCommand({bin, seconds});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  uint32_t pid = 0;
  for (absl::string_view line : absl::StrSplit(c.out, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "pid ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &pid));
    }
  }
  return pid;
}

TEST_F(DebuginfodSymbolsTest, VigilHotNamesStrippedBinaryOnlyWithDebuginfod) {
  VIGIL_REQUIRE_BPF();
  {
    // Without: the control, so this test can fail.
    test::ScopedVigild agent({"--interval", "250ms", "--sample-hz", "499", "--debuginfod-urls",
                              "off", "--debuginfod-cache-dir", cache_.path() + "/off"});
    ASSERT_TRUE(agent.ok()) << agent.log();
    const uint32_t pid = RunToCompletion(Stripped(), "1.5");
    ASSERT_NE(pid, 0u);
    std::vector<std::string> names = HotFunctions(agent, pid, absl::Now());
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(std::find(names.begin(), names.end(), kFn), names.end())
        << absl::StrJoin(names, "\n");
    EXPECT_TRUE(absl::StrContains(names[0], "/stripped+0x")) << absl::StrJoin(names, "\n");
  }
  // With: from the environment, as a user's shell would pass it.
  setenv("DEBUGINFOD_URLS", server_->url().c_str(), 1);
  test::ScopedVigild agent({"--interval", "250ms", "--sample-hz", "499", "--debuginfod-cache-dir",
                            cache_.path() + "/on"});
  unsetenv("DEBUGINFOD_URLS");
  ASSERT_TRUE(agent.ok()) << agent.log();
  // Long enough that intervals after the fetch see the burner.
  const uint32_t pid = RunToCompletion(Stripped(), "3");
  ASSERT_NE(pid, 0u);
  std::vector<std::string> names = HotFunctions(agent, pid, absl::Now());
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[0], kFn) << absl::StrJoin(names, "\n") << "\n" << server_->log();
  CommandResult st = RunCommand({test::VigilPath(), "status", "--json", "--agent", agent.agent()});
  v1::StatusResponse status;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(st.out, &status).ok()) << st.out;
  const v1::DebuginfodStatus& d = status.profiler().debuginfod();
  EXPECT_TRUE(d.enabled());
  EXPECT_EQ(d.fetched(), 1u);
  EXPECT_GT(d.cache_bytes(), 0u);
  CommandResult text = RunCommand({test::VigilPath(), "status", "--agent", agent.agent()});
  EXPECT_TRUE(absl::StrContains(text.out, "debuginfod: 1 fetched")) << text.out;
}

}  // namespace
}  // namespace vigil
