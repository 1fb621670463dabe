// vigil syscalls: the strace -c view, from the agent's window.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/fleet.h"
#include "client/format.h"
#include "re2/re2.h"

namespace vigil::cli {
namespace {

constexpr char kSyscallsHelp[] = R"(usage: vigil syscalls [options]

Per-thread syscall accounting from the agent's in-memory window: calls,
errors, total/avg/max latency per syscall, like strace -c but always on.

options:
  --pid N            only this process
  --tid N            only this thread
  --comm REGEX       only threads whose thread or process name matches (RE2)
  --since DURATION   start of the range, that long ago (default: whole window)
  --until DURATION   end of the range, that long ago (default: now)
  --top N            at most N groups (default 20, max 10000)
  --by GROUP         thread (default), process or syscall
  --sort KEY         rank by time (default, like strace -c), calls or errors
  --top-syscalls N   at most N syscalls per group (default all)
  --watch            refresh every --every until Ctrl-C
  --every DURATION   refresh period for --watch (default 1s)
)";

std::atomic<bool> g_interrupted{false};

enum { kPid = kFirstOwnFlag, kTid, kComm, kSince, kUntil, kTop, kBy, kWatch, kEvery, kSort, kTopSyscalls };

bool ParseU32(const char* v, uint32_t* out) {
  return absl::SimpleAtoi(v, out) && *out > 0;
}

}  // namespace

int RunSyscalls(int argc, char** argv) {
  const char* cmd = "syscalls";
  std::vector<option> opts = WithCommonOptions({
      {"pid", required_argument, nullptr, kPid},
      {"tid", required_argument, nullptr, kTid},
      {"comm", required_argument, nullptr, kComm},
      {"since", required_argument, nullptr, kSince},
      {"until", required_argument, nullptr, kUntil},
      {"top", required_argument, nullptr, kTop},
      {"by", required_argument, nullptr, kBy},
      {"watch", no_argument, nullptr, kWatch},
      {"every", required_argument, nullptr, kEvery},
      {"sort", required_argument, nullptr, kSort},
      {"top-syscalls", required_argument, nullptr, kTopSyscalls},
  });
  CommonFlags common;
  v1::SyscallsRequest req;
  bool watch = false;
  absl::Duration every = absl::Seconds(1);
  absl::Duration since = absl::ZeroDuration(), until = absl::ZeroDuration();
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    std::string err;
    uint32_t n = 0;
    absl::Duration d;
    switch (id) {
      case kPid:
        if (!ParseU32(optarg, &n)) return UsageError(cmd, absl::StrCat("--pid \"", optarg, "\": expected a positive integer"));
        req.set_pid(n);
        break;
      case kTid:
        if (!ParseU32(optarg, &n)) return UsageError(cmd, absl::StrCat("--tid \"", optarg, "\": expected a positive integer"));
        req.set_tid(n);
        break;
      case kComm: {
        RE2::Options o;
        o.set_log_errors(false);
        RE2 re(optarg, o);
        if (!re.ok()) return UsageError(cmd, absl::StrCat("--comm \"", optarg, "\": ", re.error()));
        req.set_comm_regex(optarg);
        break;
      }
      case kSince:
      case kUntil:
        if (!absl::ParseDuration(optarg, &d) || d <= absl::ZeroDuration()) {
          return UsageError(cmd, absl::StrCat(id == kSince ? "--since" : "--until", " \"", optarg,
                                              "\": expected a positive duration like 30s, 10m"));
        }
        (id == kSince ? since : until) = d;
        break;
      case kTop:
        if (!ParseU32(optarg, &n) || n > 10000) return UsageError(cmd, absl::StrCat("--top \"", optarg, "\": expected 1-10000"));
        req.set_top(n);
        break;
      case kBy: {
        const std::string by = optarg;
        if (by == "thread") req.set_group_by(v1::SYSCALL_GROUP_BY_THREAD);
        else if (by == "process") req.set_group_by(v1::SYSCALL_GROUP_BY_PROCESS);
        else if (by == "syscall") req.set_group_by(v1::SYSCALL_GROUP_BY_SYSCALL);
        else return UsageError(cmd, absl::StrCat("--by \"", by, "\": expected thread, process or syscall"));
        break;
      }
      case kSort: {
        const std::string key = optarg;
        if (key == "time") req.set_sort(v1::SYSCALL_SORT_TIME);
        else if (key == "calls") req.set_sort(v1::SYSCALL_SORT_CALLS);
        else if (key == "errors") req.set_sort(v1::SYSCALL_SORT_ERRORS);
        else return UsageError(cmd, absl::StrCat("--sort \"", key, "\": expected time, calls or errors"));
        break;
      }
      case kTopSyscalls:
        if (!ParseU32(optarg, &n) || n > 10000) return UsageError(cmd, absl::StrCat("--top-syscalls \"", optarg, "\": expected 1-10000"));
        req.set_top_syscalls(n);
        break;
      case kWatch: watch = true; break;
      case kEvery:
        if (!absl::ParseDuration(optarg, &d) || d < absl::Milliseconds(100)) {
          return UsageError(cmd, absl::StrCat("--every \"", optarg, "\": expected a duration of at least 100ms"));
        }
        every = d;
        break;
      case kHelp:
      case 'h':
        fputs(kSyscallsHelp, stdout);
        fputs(kCommonHelp, stdout);
        return kExitOk;
      case ':': return UsageError(cmd, absl::StrCat(argv[optind - 1], " needs a value"));
      case '?': return UsageError(cmd, absl::StrCat("unknown option ", argv[optind - 1]));
      default:
        if (!HandleCommonFlag(id, optarg, &common, &err)) return UsageError(cmd, err);
    }
  }
  if (optind < argc) return UsageError(cmd, absl::StrCat("unexpected argument \"", argv[optind], "\""));
  if (since != absl::ZeroDuration() && until >= since) {
    return UsageError(cmd, "--until must be more recent than --since (smaller duration)");
  }
  if (until != absl::ZeroDuration() && since == absl::ZeroDuration()) {
    return UsageError(cmd, "--until needs --since");
  }
  req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since));
  req.mutable_range()->set_until_ago_ns(absl::ToInt64Nanoseconds(until));

  absl::StatusOr<std::vector<ConnectOptions>> agents = AgentsFromFlags(common);
  if (!agents.ok()) return UsageError(cmd, std::string(agents.status().message()));

  if (watch) {
    signal(SIGINT, [](int) { g_interrupted = true; });
    signal(SIGTERM, [](int) { g_interrupted = true; });
  }
  const bool tty = isatty(STDOUT_FILENO);
  int rc = kExitOk;
  do {
    auto answers = QueryAll<v1::SyscallsResponse>(
        *agents, [&](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::SyscallsResponse* r) {
          return stub.GetSyscalls(ctx, req, r);
        });
    // A request the agent rejects is the user's mistake: usage, exit 2.
    for (const auto& a : answers) {
      if (a.status.code() == absl::StatusCode::kInvalidArgument) {
        return UsageError(cmd, std::string(a.status.message()));
      }
    }
    rc = ReportFailures(answers);
    std::string text;
    if (answers.size() == 1) {
      if (rc != kExitOk) return rc;
      text = common.json ? ToJson(answers[0].resp) : FormatSyscalls(answers[0].resp, req.group_by());
    } else {
      v1::FleetSyscallsResponse fleet;
      for (auto& a : answers) {
        v1::FleetSyscallsEntry* e = fleet.add_agents();
        e->set_agent(a.conn.agent);
        if (a.status.ok()) {
          *e->mutable_response() = std::move(a.resp);
        } else {
          e->set_error(std::string(a.status.message()));
        }
      }
      text = common.json ? ToJson(fleet)
                         : FormatFleetSyscalls(fleet, req.group_by(), req.sort(),
                                               req.top() ? req.top() : 20);
    }
    if (watch && tty && !common.json) fputs("\033[H\033[2J", stdout);
    if (watch && !common.json) {
      printf("vigil syscalls --watch (every %s, Ctrl-C to stop) %s\n",
             absl::FormatDuration(every).c_str(),
             absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()).c_str());
    }
    fputs(text.c_str(), stdout);
    fflush(stdout);
    if (!watch) break;
    const absl::Time until_next = absl::Now() + every;
    while (!g_interrupted && absl::Now() < until_next) absl::SleepFor(absl::Milliseconds(50));
  } while (!g_interrupted);
  return watch ? kExitOk : rc;
}

}  // namespace vigil::cli
