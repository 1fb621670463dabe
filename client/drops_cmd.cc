// vigil drops: UDP packets the kernel dropped, by socket, process and reason.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/fleet.h"
#include "client/format.h"

namespace vigil::cli {
namespace {

constexpr char kDropsHelp[] = R"(usage: vigil drops [options]

Every UDP packet the kernel dropped (IPv4 and IPv6), counted per network
namespace, local address:port and kernel drop reason, with the process that
owns the socket, and the socket's receive buffer and queued bytes at the
last drop.

options:
  --since DURATION   start of the range, that long ago (default: whole window)
  --port N           only drops whose local port is N
  --reason NAME      only this kernel drop reason, e.g. SOCKET_RCVBUFF,
                     NO_SOCKET, UDP_CSUM (any case; prefix optional)
  --top N            at most N rows (default 100, max 10000)
  --explain          under each row, one sentence on what to do about it
  --watch            refresh every --every until Ctrl-C
  --every DURATION   refresh period for --watch (default 1s)
)";

std::atomic<bool> g_interrupted{false};

enum { kSince = kFirstOwnFlag, kPort, kReason, kTop, kExplain, kWatch, kEvery };

}  // namespace

int RunDrops(int argc, char** argv) {
  const char* cmd = "drops";
  std::vector<option> opts = WithCommonOptions({
      {"since", required_argument, nullptr, kSince},
      {"port", required_argument, nullptr, kPort},
      {"reason", required_argument, nullptr, kReason},
      {"top", required_argument, nullptr, kTop},
      {"explain", no_argument, nullptr, kExplain},
      {"watch", no_argument, nullptr, kWatch},
      {"every", required_argument, nullptr, kEvery},
  });
  CommonFlags common;
  v1::DropsRequest req;
  bool watch = false, explain = false;
  absl::Duration every = absl::Seconds(1);
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    std::string err;
    uint32_t n = 0;
    absl::Duration d;
    switch (id) {
      case kSince:
        if (!absl::ParseDuration(optarg, &d) || d <= absl::ZeroDuration()) {
          return UsageError(cmd, absl::StrCat("--since \"", optarg,
                                              "\": expected a positive duration like 30s, 10m"));
        }
        req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(d));
        break;
      case kPort:
        if (!absl::SimpleAtoi(optarg, &n) || n == 0 || n > 65535) {
          return UsageError(cmd, absl::StrCat("--port \"", optarg, "\": expected 1-65535"));
        }
        req.set_port(n);
        break;
      case kReason:
        if (*optarg == '\0') return UsageError(cmd, "--reason needs a name");
        req.set_reason(optarg);  // the agent knows its kernel's names
        break;
      case kTop:
        if (!absl::SimpleAtoi(optarg, &n) || n == 0 || n > 10000) {
          return UsageError(cmd, absl::StrCat("--top \"", optarg, "\": expected 1-10000"));
        }
        req.set_top(n);
        break;
      case kExplain: explain = true; break;
      case kWatch: watch = true; break;
      case kEvery:
        if (!absl::ParseDuration(optarg, &d) || d < absl::Milliseconds(100)) {
          return UsageError(cmd, absl::StrCat("--every \"", optarg, "\": expected a duration of at least 100ms"));
        }
        every = d;
        break;
      case kHelp:
      case 'h':
        fputs(kDropsHelp, stdout);
        fputs(kCommonHelp, stdout);
        return kExitOk;
      case ':': return UsageError(cmd, absl::StrCat(argv[optind - 1], " needs a value"));
      case '?': return UsageError(cmd, absl::StrCat("unknown option ", argv[optind - 1]));
      default:
        if (!HandleCommonFlag(id, optarg, &common, &err)) return UsageError(cmd, err);
    }
  }
  if (optind < argc) return UsageError(cmd, absl::StrCat("unexpected argument \"", argv[optind], "\""));

  absl::StatusOr<std::vector<ConnectOptions>> agents = AgentsFromFlags(common);
  if (!agents.ok()) return UsageError(cmd, std::string(agents.status().message()));

  if (watch) {
    signal(SIGINT, [](int) { g_interrupted = true; });
    signal(SIGTERM, [](int) { g_interrupted = true; });
  }
  const bool tty = isatty(STDOUT_FILENO);
  int rc = kExitOk;
  do {
    auto answers = QueryAll<v1::DropsResponse>(
        *agents, [&](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::DropsResponse* r) {
          return stub.GetDrops(ctx, req, r);
        });
    for (const auto& a : answers) {
      if (a.status.code() == absl::StatusCode::kInvalidArgument) {
        return UsageError(cmd, std::string(a.status.message()));
      }
    }
    rc = ReportFailures(answers);
    if (answers.size() == 1 && rc != kExitOk) return rc;
    std::string text;
    if (answers.size() == 1) {
      text = common.json ? ToJson(answers[0].resp) : FormatDrops(answers[0].resp, explain);
    } else {
      v1::FleetDropsResponse fleet;
      for (auto& a : answers) {
        v1::FleetDropsEntry* e = fleet.add_agents();
        e->set_agent(a.conn.agent);
        if (a.status.ok()) {
          if (!common.json) absl::StrAppend(&text, "== ", a.conn.agent, "\n", FormatDrops(a.resp, explain));
          *e->mutable_response() = std::move(a.resp);
        } else {
          e->set_error(std::string(a.status.message()));
        }
      }
      if (common.json) text = ToJson(fleet);
    }
    if (watch && tty && !common.json) fputs("\033[H\033[2J", stdout);
    if (watch && !common.json) {
      printf("vigil drops --watch (every %s, Ctrl-C to stop) %s\n", absl::FormatDuration(every).c_str(),
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
