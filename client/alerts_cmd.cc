// vigil alerts: spin alerts (threads burning CPU without syscalls), the
// active and recent ones, or --follow to print them as they fire and resolve.
#include <google/protobuf/util/json_util.h>

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/fleet.h"
#include "client/format.h"

namespace vigil::cli {
namespace {

constexpr char kHelpText[] = R"(usage: vigil alerts [options]

Spin alerts: a thread on CPU for at least spin-cpu-threshold of one CPU
(default 0.9) with no syscalls and no blocking, for at least
spin-min-duration (default 30s). Lists the firing alerts, then the recent
resolved ones, with each thread's hottest stack during the spin.

options:
  --follow         print alert events as they fire and resolve (Ctrl-C stops);
                   with --json, one JSON object per line
  --recent N       at most N resolved alerts (default: all the agent keeps)
  --stacks N       stacks printed per alert (default 1; --json has all)

)";

enum { kFollow = kFirstOwnFlag, kRecent, kStacks };

std::string OneLineJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, opts).ok()) return "{}";
  return out;
}

std::string FormatAlert(const v1::SpinAlert& a, int stacks) {
  std::string s = absl::StrFormat(
      "%-8s #%d  %s  pid %d tid %d  %s (%s)  cpu %.0f%%  for %s  since %s", a.state(), a.id(),
      a.host(), a.pid(), a.tid(), a.comm(), a.process_comm(), a.cpu_share() * 100,
      absl::FormatDuration(absl::Seconds(a.duration_ns() / 1000000000)),
      absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixNanos(a.start_unix_ns()),
                       absl::LocalTimeZone()));
  if (a.state() == "resolved") absl::StrAppend(&s, "  resolved: ", a.resolved_reason());
  absl::StrAppend(&s, "\n");
  if (!a.cmdline().empty()) absl::StrAppend(&s, "    cmdline: ", a.cmdline(), "\n");
  if (!a.cgroup().empty()) absl::StrAppend(&s, "    cgroup:  ", a.cgroup(), "\n");
  if (!a.container_id().empty()) absl::StrAppend(&s, "    container: ", a.container_id(), "\n");
  for (int i = 0; i < a.stacks_size() && i < stacks; ++i) {
    absl::StrAppend(&s, "    stack (", i < a.stack_samples_size() ? a.stack_samples(i) : 0,
                    " samples):\n");
    for (const auto& f : a.stacks(i).values()) absl::StrAppend(&s, "      ", f.string_value(), "\n");
  }
  return s;
}

}  // namespace

int RunAlerts(int argc, char** argv) {
  const char* cmd = "alerts";
  std::vector<option> opts = WithCommonOptions({
      {"follow", no_argument, nullptr, kFollow},
      {"recent", required_argument, nullptr, kRecent},
      {"stacks", required_argument, nullptr, kStacks},
  });
  CommonFlags common;
  bool follow = false;
  uint32_t recent = 0;
  int stacks = 1;
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    std::string err;
    switch (id) {
      case kHelp:
      case 'h':
        fputs(kHelpText, stdout);
        fputs(kCommonHelp, stdout);
        return kExitOk;
      case kFollow: follow = true; break;
      case kRecent:
        if (!absl::SimpleAtoi(optarg, &recent) || recent == 0) {
          return UsageError(cmd, absl::StrCat("--recent \"", optarg, "\": expected a positive integer"));
        }
        break;
      case kStacks:
        if (!absl::SimpleAtoi(optarg, &stacks) || stacks < 0 || stacks > 100) {
          return UsageError(cmd, absl::StrCat("--stacks \"", optarg, "\": expected an integer in [0, 100]"));
        }
        break;
      case ':': return UsageError(cmd, absl::StrCat(argv[optind - 1], " needs a value"));
      case '?': return UsageError(cmd, absl::StrCat("unknown option ", argv[optind - 1]));
      default:
        if (!HandleCommonFlag(id, optarg, &common, &err)) return UsageError(cmd, err);
    }
  }
  if (optind < argc) return UsageError(cmd, absl::StrCat("unexpected argument \"", argv[optind], "\""));
  absl::StatusOr<std::vector<ConnectOptions>> agents = AgentsFromFlags(common);
  if (!agents.ok()) return UsageError(cmd, std::string(agents.status().message()));

  if (!follow) {
    v1::ListAlertsRequest req;
    req.set_recent(recent);
    auto answers = QueryAll<v1::ListAlertsResponse>(
        *agents, [&](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::ListAlertsResponse* r) {
          return stub.ListAlerts(ctx, req, r);
        });
    for (const auto& a : answers) {
      if (a.status.code() == absl::StatusCode::kInvalidArgument) {
        return UsageError(cmd, std::string(a.status.message()));
      }
    }
    const int rc = ReportFailures(answers);
    if (rc != kExitOk) return rc;
    // Every alert names its host, so several agents' alerts merge into one
    // list.
    v1::ListAlertsResponse resp;
    for (auto& a : answers) {
      if (!a.status.ok()) continue;
      if (answers.size() == 1) {
        resp = std::move(a.resp);
        break;
      }
      resp.set_fired_total(resp.fired_total() + a.resp.fired_total());
      for (auto& alert : *a.resp.mutable_alerts()) *resp.add_alerts() = std::move(alert);
    }
    if (common.json) {
      fputs(ToJson(resp).c_str(), stdout);
      return kExitOk;
    }
    if (resp.alerts_size() == 0) printf("no spin alerts (%d fired since the agent started)\n",
                                        static_cast<int>(resp.fired_total()));
    for (const auto& a : resp.alerts()) fputs(FormatAlert(a, stacks).c_str(), stdout);
    return kExitOk;
  }

  // --follow: one agent's stream, no deadline; it ends when the agent stops.
  if (agents->size() != 1) return UsageError(cmd, "--follow takes exactly one --agent");
  const ConnectOptions& conn = agents->front();
  absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> stub = Connect(conn);
  if (!stub.ok()) return UsageError(cmd, std::string(stub.status().message()));
  grpc::ClientContext ctx;
  v1::WatchAlertsRequest req;
  req.set_include_active(true);
  std::unique_ptr<grpc::ClientReader<v1::SpinAlert>> reader = (*stub)->WatchAlerts(&ctx, req);
  v1::SpinAlert a;
  while (reader->Read(&a)) {
    fputs(common.json ? (OneLineJson(a) + "\n").c_str() : FormatAlert(a, stacks).c_str(), stdout);
    fflush(stdout);
  }
  absl::Status s = FromGrpc(reader->Finish(), conn);
  if (!s.ok()) return Failure(std::string(s.message()));
  return kExitOk;
}

}  // namespace vigil::cli
