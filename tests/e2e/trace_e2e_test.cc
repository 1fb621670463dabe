// vigil trace end to end: a vigild with --allow-trace, Debian's own
// python3.11 (stripped, no frame pointers) as the traced program, and strace
// on the same run as the ground truth.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

constexpr char kPython[] = "/usr/bin/python3.11";

// A child whose stdin is a pipe we hold: it waits for our line before it
// does what it was started for, so tracers can attach first.
class GatedChild {
 public:
  explicit GatedChild(std::vector<std::string> argv) {
    int p[2];
    if (pipe(p) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(p[0], 0);
      close(p[0]);
      close(p[1]);
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(p[0]);
    gate_ = p[1];
  }
  ~GatedChild() {
    if (gate_ >= 0) close(gate_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Go() {
    (void)!write(gate_, "go\n", 3);
    close(gate_);
    gate_ = -1;
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int gate_ = -1;
  bool reaped_ = false;
};

// One syscall as both tracers can say it: name and result ("3", "-ENOENT",
// "?" for calls that never return).
struct Call {
  std::string name;
  std::string result;
  bool operator==(const Call& o) const { return name == o.name && result == o.result; }
};

using PerThread = std::map<uint32_t, std::vector<Call>>;

// strace's result text after " = ": a number (decimal or hex), "-1 ENAME
// (...)", or "?".
std::string StraceResult(absl::string_view r) {
  r = absl::StripLeadingAsciiWhitespace(r);
  std::vector<absl::string_view> words = absl::StrSplit(r, ' ', absl::SkipEmpty());
  if (words.empty()) return "";
  if (words[0] == "?") return "?";
  if (words[0] == "-1" && words.size() > 1 && absl::StartsWith(words[1], "E")) {
    return absl::StrCat("-", words[1]);
  }
  int64_t v = 0;
  uint64_t u = 0;
  if (absl::StartsWith(words[0], "0x") && absl::SimpleHexAtoi(words[0].substr(2), &u)) {
    return absl::StrCat(static_cast<int64_t>(u));
  }
  if (absl::SimpleAtoi(words[0], &v)) return absl::StrCat(v);
  return std::string(words[0]);
}

// `strace -f -o FILE` lines: "TID name(args) = result", split calls as
// "TID name(... <unfinished ...>" and "TID <... name resumed>...) = result".
PerThread ParseStrace(const std::string& path) {
  PerThread out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    const size_t sp = line.find(' ');
    uint32_t tid = 0;
    if (sp == std::string::npos || !absl::SimpleAtoi(line.substr(0, sp), &tid)) continue;
    // strace pads the pid column when several processes are traced.
    absl::string_view rest =
        absl::StripLeadingAsciiWhitespace(absl::string_view(line).substr(sp + 1));
    if (absl::StartsWith(rest, "+++") || absl::StartsWith(rest, "---")) continue;
    if (absl::StrContains(rest, "<unfinished ...>")) continue;  // counted when it resumes
    std::string name;
    if (absl::ConsumePrefix(&rest, "<... ")) {
      name = std::string(rest.substr(0, rest.find(' ')));
    } else {
      name = std::string(rest.substr(0, rest.find('(')));
    }
    // strace pads short calls to a column: ")      = 0".
    const size_t eq = rest.rfind(" = ");
    if (eq == absl::string_view::npos) continue;
    const std::string result = StraceResult(rest.substr(eq + 3));
    out[tid].push_back({name, result});
  }
  return out;
}

Call FromEvent(const v1::TraceEvent& e) {
  if (e.no_return()) return {e.syscall(), "?"};
  if (!e.errno_name().empty()) return {e.syscall(), absl::StrCat("-", e.errno_name())};
  return {e.syscall(), absl::StrCat(e.ret())};
}

// Each thread's calls from the first `marker` call of `main_tid` on (the
// other threads start after it).
PerThread From(const PerThread& all, uint32_t main_tid, const std::string& marker) {
  PerThread out;
  for (const auto& [tid, calls] : all) {
    size_t start = 0;
    if (tid == main_tid) {
      while (start < calls.size() && calls[start].name != marker) ++start;
    }
    out[tid].assign(calls.begin() + static_cast<long>(start), calls.end());
  }
  return out;
}

// True once some trace session's sys_exit program is attached (its link
// exists): the session is armed, its maps seeded before the attach.
bool TraceAttached() {
  std::vector<std::string> ids;
  for (absl::string_view line :
       absl::StrSplit(test::RunCommand({"/usr/sbin/bpftool", "prog", "show"}).out, '\n')) {
    if (absl::StrContains(line, "name vigil_trace_ex")) {
      ids.emplace_back(line.substr(0, line.find(':')));
    }
  }
  const std::string links = test::RunCommand({"/usr/sbin/bpftool", "link", "show"}).out;
  for (const std::string& id : ids) {
    if (absl::StrContains(links, absl::StrCat("prog ", id, " "))) return true;
  }
  return false;
}

class TraceE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = new std::string(test::BpfUnavailableReason());
    if (!skip_reason_->empty()) return;
    agent_ = new test::ScopedVigild({"--allow-trace", "--profile", "off", "--spin", "off",
                                     "--session-max", "2", "--session-max-duration", "1m"});
  }
  static void TearDownTestSuite() {
    delete agent_;
    delete skip_reason_;
  }
  void SetUp() override {
    if (!skip_reason_->empty()) VIGIL_SKIP_OR_FAIL(*skip_reason_);
    ASSERT_TRUE(agent_->ok()) << agent_->log();
    stub_ = v1::Vigil::NewStub(
        grpc::CreateChannel(agent_->agent(), grpc::InsecureChannelCredentials()));
  }

  // A trace session read on its own thread until it ends.
  struct Stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::TraceMessage>> reader;
    std::vector<v1::TraceEvent> events;
    std::vector<v1::TraceSessionInfo> infos;
    absl::Notification started, done;
    grpc::Status status;
    std::thread thread;
    ~Stream() {
      if (thread.joinable()) {
        ctx.TryCancel();
        thread.join();
      }
    }
  };

  std::unique_ptr<Stream> StartTrace(const v1::TraceRequest& req) {
    auto s = std::make_unique<Stream>();
    s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    s->reader = stub_->Trace(&s->ctx, req);
    Stream* raw = s.get();
    s->thread = std::thread([raw] {
      v1::TraceMessage m;
      while (raw->reader->Read(&m)) {
        for (const v1::TraceEvent& e : m.events()) raw->events.push_back(e);
        if (m.has_info()) {
          raw->infos.push_back(m.info());
          if (!raw->started.HasBeenNotified()) raw->started.Notify();
        }
      }
      raw->status = raw->reader->Finish();
      if (!raw->started.HasBeenNotified()) raw->started.Notify();
      raw->done.Notify();
    });
    return s;
  }

  static std::string* skip_reason_;
  static test::ScopedVigild* agent_;
  std::unique_ptr<v1::Vigil::Stub> stub_;
};

std::string* TraceE2ETest::skip_reason_ = nullptr;
test::ScopedVigild* TraceE2ETest::agent_ = nullptr;

// The same run seen by strace -f and by vigil trace: every thread's calls,
// in order, with the same results, from the marker to the process's exit
// (interpreter shutdown included), across a second thread and a forked
// shell (its exec and exit included).
TEST_F(TraceE2ETest, SameCallsInTheSameOrderAsStrace) {
  test::TempDir dir;
  const std::string script = R"(
import os, sys, threading
sys.stdin.readline()
os.getppid()
try:
    open('/nonexistent/vigil-trace-e2e')
except OSError:
    pass
with open('/etc/hostname', 'rb') as f:
    f.read()
os.stat('/etc')
fd = os.open('/dev/null', os.O_WRONLY)
os.write(fd, b'x' * 10)
os.close(fd)
def work():
    for _ in range(3):
        os.stat('/tmp')
t = threading.Thread(target=work)
t.start()
t.join()
os.access('/etc/passwd', os.R_OK)
os.system('exit 3')
)";
  GatedChild py({kPython, "-c", script});
  ASSERT_GT(py.pid(), 0);
  // Let the interpreter reach its readline before anyone attaches.
  absl::SleepFor(absl::Milliseconds(500));

  const std::string strace_out = dir.path() + "/strace.txt";
  const pid_t strace = fork();
  if (strace == 0) {
    const std::string pid = std::to_string(py.pid());
    execl("/usr/bin/strace", "strace", "-f", "-qq", "-o", strace_out.c_str(), "-p", pid.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(strace, 0);
  // strace is attached once the kernel names it the tracer.
  bool attached = false;
  for (int i = 0; i < 100 && !attached; ++i) {
    std::ifstream status(absl::StrCat("/proc/", py.pid(), "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (absl::StartsWith(line, "TracerPid:") && line != "TracerPid:\t0") attached = true;
    }
    if (!attached) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(attached) << "strace did not attach";

  v1::TraceRequest req;
  req.set_pid(static_cast<uint32_t>(py.pid()));
  req.set_duration_ns(absl::ToInt64Nanoseconds(absl::Seconds(30)));
  std::unique_ptr<Stream> trace = StartTrace(req);
  ASSERT_TRUE(trace->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_FALSE(trace->infos.empty()) << trace->status.error_message();

  py.Go();
  EXPECT_EQ(py.Wait(), 0);
  ASSERT_TRUE(trace->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(trace->status.ok()) << trace->status.error_message();
  int strace_status = 0;
  waitpid(strace, &strace_status, 0);

  ASSERT_FALSE(trace->infos.empty());
  const v1::TraceSessionInfo& last = trace->infos.back();
  EXPECT_TRUE(last.ended());
  EXPECT_EQ(last.message(), "process exited");
  EXPECT_EQ(last.loss().rate_limited() + last.loss().ring_full(), 0u);

  PerThread ours_all;
  for (const v1::TraceEvent& e : trace->events) {
    // A call already running when tracing began: strace shows it as
    // resumed; and a new thread's first "call" is clone's return in it.
    if (e.unfinished()) continue;
    ours_all[e.tid()].push_back(FromEvent(e));
  }
  const uint32_t main_tid = static_cast<uint32_t>(py.pid());
  const PerThread theirs = From(ParseStrace(strace_out), main_tid, "getppid");
  const PerThread ours = From(ours_all, main_tid, "getppid");
  // The main thread, the worker, and the shell os.system() forks (strace -f
  // and vigil trace both follow children).
  ASSERT_EQ(theirs.size(), 3u);
  ASSERT_EQ(ours.size(), 3u);
  // The marker was found, and the script's calls follow it.
  ASSERT_GT(theirs.at(main_tid).size(), 30u);
  size_t compared = 0;
  for (const auto& [tid, calls] : theirs) {
    ASSERT_TRUE(ours.count(tid)) << "thread " << tid << " missing";
    const std::vector<Call>& mine = ours.at(tid);
    size_t i = 0;
    while (i < mine.size() && i < calls.size() && mine[i] == calls[i]) ++i;
    if (i < mine.size() || i < calls.size()) {
      std::string where;
      for (size_t k = i; k < i + 4; ++k) {
        absl::StrAppend(&where, "\n  #", k, " vigil ",
                        k < mine.size() ? absl::StrCat(mine[k].name, "=", mine[k].result) : "-",
                        "  strace ",
                        k < calls.size() ? absl::StrCat(calls[k].name, "=", calls[k].result) : "-");
      }
      ADD_FAILURE() << "thread " << tid << ": " << mine.size() << " calls vs strace's "
                    << calls.size() << ", first difference at #" << i << where;
    }
    compared += calls.size();
  }
  printf("compared %zu calls in %zu threads with strace\n", compared, theirs.size());
  // The decoded arguments say what strace says about the failed open.
  bool saw_enoent = false;
  for (const v1::TraceEvent& e : trace->events) {
    if (e.syscall() == "openat" && e.errno_name() == "ENOENT" && e.args_size() >= 3 &&
        e.args(1) == "\"/nonexistent/vigil-trace-e2e\"") {
      saw_enoent = true;
      EXPECT_EQ(e.args(0), "AT_FDCWD");
      EXPECT_TRUE(absl::StartsWith(e.args(2), "O_RDONLY|O_CLOEXEC")) << e.args(2);
      EXPECT_EQ(e.ret(), -2);
      EXPECT_GT(e.duration_ns(), 0u);
    }
  }
  EXPECT_TRUE(saw_enoent);
}

// Kernel-side filters through the CLI: only failed openat calls, as JSON
// Lines, each with its path.
TEST_F(TraceE2ETest, CliFiltersFailedOpensAsJsonLines) {
  const std::string script = R"(
import sys
sys.stdin.readline()
for i in range(5):
    try:
        open('/nonexistent/vigil-%d' % i)
    except OSError:
        pass
open('/etc/hostname').close()
)";
  GatedChild py({kPython, "-c", script});
  absl::SleepFor(absl::Milliseconds(500));
  test::CommandResult r;
  std::thread cli([&] {
    r = test::RunCommand(
        {test::VigilPath(), "--agent", agent_->agent(), "trace", "--pid", std::to_string(py.pid()),
         "--syscall", "openat", "--failed", "--duration", "20s", "--json"},
        absl::Seconds(40));
  });
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = TraceAttached();
    if (!up) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(up);  // not ASSERT: the client thread must be joined
  py.Go();
  EXPECT_EQ(py.Wait(), 0);
  cli.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(absl::StrContains(lines[i], "\"syscall\":\"openat\"")) << lines[i];
    EXPECT_TRUE(absl::StrContains(lines[i], "\"errno\":\"ENOENT\"")) << lines[i];
    EXPECT_TRUE(absl::StrContains(lines[i], "\"ret\":-2")) << lines[i];
    EXPECT_TRUE(absl::StrContains(lines[i], absl::StrCat("\\\"/nonexistent/vigil-", i, "\\\"")))
        << lines[i];
  }
  EXPECT_TRUE(absl::StrContains(r.err, "5 events; ended: process exited")) << r.err;
}

// Ctrl-C ends vigil trace as it ends strace: the events that came are
// printed, the summary says why it ended, exit 0, and the agent detaches.
TEST_F(TraceE2ETest, CtrlCEndsTheSessionAndDetaches) {
  const std::string script = R"(
import os, sys, time
sys.stdin.readline()
while True:
    os.getppid()
    time.sleep(0.01)
)";
  GatedChild py({kPython, "-c", script});
  test::Child cli({test::VigilPath(), "--agent", agent_->agent(), "trace", "--pid",
                   std::to_string(py.pid()), "--syscall", "getppid", "--duration", "60s",
                   "--json"});
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = TraceAttached();
    if (!up) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(up);
  py.Go();
  const std::string first = cli.Line();  // each message is flushed as it comes
  EXPECT_TRUE(absl::StrContains(first, "\"syscall\":\"getppid\"")) << first;
  cli.Kill(SIGINT);
  cli.Rest();
  EXPECT_EQ(cli.ReapWithin(absl::Seconds(10)), 0) << "vigil trace did not exit 0 on Ctrl-C";
  bool gone = false;
  for (int i = 0; i < 40 && !gone; ++i) {
    gone = !TraceAttached();
    if (!gone) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(gone) << "a trace program outlived its interrupted session";
  EXPECT_TRUE(absl::StrContains(agent_->CurrentLog(), "(client cancelled)"))
      << agent_->CurrentLog();
}

// --tid keeps one thread (in the kernel), --comm the threads whose name
// matches (in the agent): two sessions on the same run.
TEST_F(TraceE2ETest, TidAndCommFilters) {
  const std::string script = R"(
import os, sys, threading
sys.stdin.readline()
def work():
    for _ in range(5):
        os.stat('/tmp')
t = threading.Thread(target=work)
t.start()
t.join()
os.stat('/etc')
)";
  GatedChild py({kPython, "-c", script});
  absl::SleepFor(absl::Milliseconds(500));
  v1::TraceRequest req;
  req.set_pid(static_cast<uint32_t>(py.pid()));
  req.add_syscalls("newfstatat");
  req.set_tid(static_cast<uint32_t>(py.pid()));
  std::unique_ptr<Stream> main_only = StartTrace(req);
  req.set_tid(0);
  req.set_comm_regex("^no-such-thread$");
  std::unique_ptr<Stream> nobody = StartTrace(req);
  ASSERT_TRUE(main_only->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(nobody->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  py.Go();
  EXPECT_EQ(py.Wait(), 0);
  ASSERT_TRUE(main_only->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(nobody->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  int etc = 0;
  for (const v1::TraceEvent& e : main_only->events) {
    EXPECT_EQ(e.tid(), static_cast<uint32_t>(py.pid()));
    EXPECT_NE(e.args(1), "\"/tmp\"") << "the worker's calls passed the tid filter";
    etc += e.args(1) == "\"/etc\"";
  }
  EXPECT_EQ(etc, 1);
  EXPECT_TRUE(nobody->events.empty());
}

// Over the per-second limit, the kernel drops and counts: every call is
// either delivered or counted, none vanishes.
TEST_F(TraceE2ETest, RateLimitCountsEveryDroppedEvent) {
  test::ScopedVigild limited({"--allow-trace", "--profile", "off", "--spin", "off",
                              "--trace-max-events-per-second", "100"});
  ASSERT_TRUE(limited.ok()) << limited.log();
  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(limited.agent(), grpc::InsecureChannelCredentials()));
  const std::string script = R"(
import os, sys
sys.stdin.readline()
for _ in range(20000):
    os.getppid()
)";
  GatedChild py({kPython, "-c", script});
  absl::SleepFor(absl::Milliseconds(500));
  grpc::ClientContext ctx;
  v1::TraceRequest req;
  req.set_pid(static_cast<uint32_t>(py.pid()));
  req.add_syscalls("getppid");
  req.set_duration_ns(absl::ToInt64Nanoseconds(absl::Seconds(30)));
  auto reader = stub->Trace(&ctx, req);
  v1::TraceMessage m;
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.has_info());
  py.Go();
  uint64_t events = 0;
  v1::TraceSessionInfo last;
  while (reader->Read(&m)) {
    for (const v1::TraceEvent& e : m.events()) {
      ++events;
      EXPECT_EQ(e.syscall(), "getppid");
    }
    if (m.has_info()) last = m.info();
  }
  ASSERT_TRUE(reader->Finish().ok());
  py.Wait();
  EXPECT_TRUE(last.ended());
  EXPECT_EQ(last.events(), events);
  EXPECT_EQ(events + last.loss().rate_limited() + last.loss().ring_full(), 20000u);
  EXPECT_GT(last.loss().rate_limited(), 0u);
  EXPECT_LE(events, 1000u);  // 100/s over the few seconds the loop runs
}

// Bad requests: one line each, INVALID_ARGUMENT, and the agent serves on.
TEST_F(TraceE2ETest, BadRequestsAreRefusedWithOneLine) {
  auto call = [&](const v1::TraceRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub_->Trace(&ctx, req);
    v1::TraceMessage m;
    while (reader->Read(&m)) {
    }
    return reader->Finish();
  };
  v1::TraceRequest req;
  grpc::Status s = call(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // A pid that existed and is gone.
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  req.set_pid(static_cast<uint32_t>(gone));
  s = call(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "no process")) << s.error_message();

  req.set_pid(static_cast<uint32_t>(getpid()));
  req.add_syscalls("no_such_call");
  s = call(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "unknown syscall")) << s.error_message();

  req.clear_syscalls();
  req.set_duration_ns(absl::ToInt64Nanoseconds(absl::Hours(2)));
  s = call(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "limit")) << s.error_message();

  req.set_duration_ns(0);
  req.set_comm_regex("(unclosed");
  s = call(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // The client refuses what it can check itself, exit status 2.
  for (const char* d : {"0", "inf", "-1s"}) {
    test::CommandResult r = test::RunCommand(
        {test::VigilPath(), "--agent", agent_->agent(), "trace", "--pid", "1", "--duration", d});
    EXPECT_EQ(r.exit_code, 2) << d << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  test::CommandResult r =
      test::RunCommand({test::VigilPath(), "--agent", agent_->agent(), "trace", "--pid", "1",
                        "--syscall", "no_such_call", "--duration", "1s"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "unknown syscall")) << r.err;

  grpc::ClientContext ctx;
  v1::StatusResponse status;
  ASSERT_TRUE(stub_->GetStatus(&ctx, v1::StatusRequest(), &status).ok());
}

// Sessions are bounded, and each one's programs are gone when it ends:
// here by the client leaving mid-session.
TEST_F(TraceE2ETest, SessionsAreBoundedAndDetachWhenTheClientLeaves) {
  GatedChild sleeper({"/usr/bin/sleep", "60"});
  v1::TraceRequest req;
  req.set_pid(static_cast<uint32_t>(sleeper.pid()));
  std::unique_ptr<Stream> a = StartTrace(req);
  std::unique_ptr<Stream> b = StartTrace(req);
  ASSERT_TRUE(a->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(b->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(TraceAttached());
  // The agent allows two (--session-max 2): a third is refused.
  {
    grpc::ClientContext ctx;
    auto reader = stub_->Trace(&ctx, req);
    v1::TraceMessage m;
    while (reader->Read(&m)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }
  a.reset();  // cancels: the client leaves
  b.reset();
  bool gone = false;
  for (int i = 0; i < 40 && !gone; ++i) {
    const std::string progs = test::RunCommand({"/usr/sbin/bpftool", "prog", "show"}).out;
    gone = !absl::StrContains(progs, "vigil_trace_");
    if (!gone) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(gone) << "a trace program outlived its session";
  // The journal names each session and its end.
  EXPECT_TRUE(absl::StrContains(agent_->CurrentLog(), "trace session")) << agent_->CurrentLog();
  EXPECT_TRUE(absl::StrContains(agent_->CurrentLog(), "(client cancelled)"))
      << agent_->CurrentLog();
}

// Stopping the agent ends its sessions: the client hears why, and nothing
// of the session stays in the kernel.
TEST_F(TraceE2ETest, AgentStopEndsSessionsAndDetaches) {
  test::ScopedVigild own({"--allow-trace", "--profile", "off", "--spin", "off"});
  ASSERT_TRUE(own.ok()) << own.log();
  GatedChild sleeper({"/usr/bin/sleep", "60"});
  test::CommandResult r;
  std::thread cli([&] {
    r = test::RunCommand({test::VigilPath(), "--agent", own.agent(), "trace", "--pid",
                          std::to_string(sleeper.pid()), "--duration", "60s"},
                         absl::Seconds(70));
  });
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = TraceAttached();
    if (!up) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(up);
  EXPECT_EQ(own.Stop(), 0);
  cli.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "ended: agent stopping")) << r.err;
  // Programs are freed after an RCU grace period, not at close.
  std::string progs;
  for (int i = 0; i < 40; ++i) {
    progs = test::RunCommand({"/usr/sbin/bpftool", "prog", "show"}).out;
    if (!absl::StrContains(progs, "vigil_trace_")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_FALSE(absl::StrContains(progs, "vigil_trace_")) << progs;
}

// Off unless the agent allows it, and says how to allow it.
TEST_F(TraceE2ETest, OffUnlessAllowed) {
  test::ScopedVigild plain({"--profile", "off", "--spin", "off"});
  ASSERT_TRUE(plain.ok()) << plain.log();
  test::CommandResult r = test::RunCommand(
      {test::VigilPath(), "--agent", plain.agent(), "trace", "--pid", "1", "--duration", "1s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--allow-trace")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace vigil
