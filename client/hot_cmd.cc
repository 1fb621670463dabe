// vigil hot: the hottest functions by sampled CPU time (perf report, with
// and without children), from the agent's always-on profiler.
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/fleet.h"
#include "client/format.h"
#include "client/profile_export.h"
#include "client/profile_flags.h"
#include "re2/re2.h"

namespace vigil::cli {

const char kProfileFilterHelp[] = R"(filters:
  --pid N            only this process
  --tid N            only this thread
  --comm REGEX       only threads whose thread or process name matches (RE2)
  --since DURATION   start of the range, that long ago (default: whole window)
  --until DURATION   end of the range, that long ago (default: now)
  --user-only        user frames only (kernel frames dropped)
  --kernel-only      kernel frames only (user frames dropped)
)";

std::vector<option> ProfileFilterOptions() {
  return {
      {"pid", required_argument, nullptr, kProfPid},
      {"tid", required_argument, nullptr, kProfTid},
      {"comm", required_argument, nullptr, kProfComm},
      {"since", required_argument, nullptr, kProfSince},
      {"until", required_argument, nullptr, kProfUntil},
      {"user-only", no_argument, nullptr, kProfUserOnly},
      {"kernel-only", no_argument, nullptr, kProfKernelOnly},
  };
}

bool HandleProfileFilterFlag(int id, const char* value, ProfileFilterFlags* f, std::string* err) {
  uint32_t n = 0;
  absl::Duration d;
  switch (id) {
    case kProfPid:
    case kProfTid:
      if (!absl::SimpleAtoi(value, &n) || n == 0) {
        *err = absl::StrCat(id == kProfPid ? "--pid" : "--tid", " \"", value, "\": expected a positive integer");
        return false;
      }
      (id == kProfPid ? f->pid : f->tid) = n;
      return true;
    case kProfComm: {
      RE2::Options o;
      o.set_log_errors(false);
      RE2 re(value, o);
      if (!re.ok()) {
        *err = absl::StrCat("--comm \"", value, "\": ", re.error());
        return false;
      }
      f->comm_regex = value;
      return true;
    }
    case kProfSince:
    case kProfUntil:
      if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
        *err = absl::StrCat(id == kProfSince ? "--since" : "--until", " \"", value,
                            "\": expected a positive duration like 30s, 10m");
        return false;
      }
      (id == kProfSince ? f->since : f->until) = d;
      return true;
    case kProfUserOnly:
      f->user_only = true;
      f->frames = v1::FRAME_FILTER_USER;
      return true;
    case kProfKernelOnly:
      f->kernel_only = true;
      f->frames = v1::FRAME_FILTER_KERNEL;
      return true;
    default:
      *err = "internal: unknown filter flag";
      return false;
  }
}

std::string CheckProfileFilter(const ProfileFilterFlags& f) {
  if (f.user_only && f.kernel_only) return "--user-only and --kernel-only exclude each other";
  if (f.since != absl::ZeroDuration() && f.until >= f.since) {
    return "--until must be more recent than --since (smaller duration)";
  }
  if (f.until != absl::ZeroDuration() && f.since == absl::ZeroDuration()) return "--until needs --since";
  return "";
}

namespace {

constexpr char kHotHelp[] = R"(usage: vigil hot [options]

The hottest functions by sampled CPU time over a range of the agent's
always-on profiler: self % (the function itself was running, perf report
--no-children) and total % (it was anywhere on the stack, --children).

options:
  --top N            at most N functions (default 20, max 10000)
)";

enum { kTop = kProfFirstOwn };

}  // namespace

int RunHot(int argc, char** argv) {
  const char* cmd = "hot";
  std::vector<option> own = ProfileFilterOptions();
  own.push_back({"top", required_argument, nullptr, kTop});
  std::vector<option> opts = WithCommonOptions(own);
  CommonFlags common;
  ProfileFilterFlags filter;
  v1::HotRequest req;
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    std::string err;
    uint32_t n = 0;
    if (id >= kProfPid && id < kProfFirstOwn) {
      if (!HandleProfileFilterFlag(id, optarg, &filter, &err)) return UsageError(cmd, err);
      continue;
    }
    switch (id) {
      case kTop:
        if (!absl::SimpleAtoi(optarg, &n) || n == 0 || n > 10000) {
          return UsageError(cmd, absl::StrCat("--top \"", optarg, "\": expected 1-10000"));
        }
        req.set_top(n);
        break;
      case kHelp:
      case 'h':
        fputs(kHotHelp, stdout);
        fputs(kProfileFilterHelp, stdout);
        fputs(kCommonHelp, stdout);
        return kExitOk;
      case ':': return UsageError(cmd, absl::StrCat(argv[optind - 1], " needs a value"));
      case '?': return UsageError(cmd, absl::StrCat("unknown option ", argv[optind - 1]));
      default:
        if (!HandleCommonFlag(id, optarg, &common, &err)) return UsageError(cmd, err);
    }
  }
  if (optind < argc) return UsageError(cmd, absl::StrCat("unexpected argument \"", argv[optind], "\""));
  if (std::string e = CheckProfileFilter(filter); !e.empty()) return UsageError(cmd, e);
  ApplyProfileFilter(filter, &req);

  absl::StatusOr<std::vector<ConnectOptions>> agents = AgentsFromFlags(common);
  if (!agents.ok()) return UsageError(cmd, std::string(agents.status().message()));
  auto answers = QueryAll<v1::HotResponse>(
      *agents, [&](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::HotResponse* r) {
        return stub.GetHot(ctx, req, r);
      });
  for (const auto& a : answers) {
    if (a.status.code() == absl::StatusCode::kInvalidArgument) {
      return UsageError(cmd, std::string(a.status.message()));
    }
  }
  const int rc = ReportFailures(answers);
  if (answers.size() == 1) {
    if (rc != kExitOk) return rc;
    fputs((common.json ? ToJson(answers[0].resp) : FormatHot(answers[0].resp)).c_str(), stdout);
    return kExitOk;
  }
  // Several agents: one table per host (sample shares do not add across
  // hosts with different CPU counts and rates).
  v1::FleetHotResponse fleet;
  std::string text;
  for (auto& a : answers) {
    v1::FleetHotEntry* e = fleet.add_agents();
    e->set_agent(a.conn.agent);
    if (a.status.ok()) {
      absl::StrAppend(&text, "== ", a.conn.agent, "\n", FormatHot(a.resp), "\n");
      *e->mutable_response() = std::move(a.resp);
    } else {
      e->set_error(std::string(a.status.message()));
    }
  }
  fputs((common.json ? ToJson(fleet) : text).c_str(), stdout);
  return rc;
}

}  // namespace vigil::cli
