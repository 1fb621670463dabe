// vigil status: is the agent healthy, and what could it not record?
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/fleet.h"
#include "client/format.h"

namespace vigil::cli {

int RunStatus(int argc, char** argv) {
  const char* cmd = "status";
  std::vector<option> opts = WithCommonOptions({});
  CommonFlags common;
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    std::string err;
    switch (id) {
      case kHelp:
      case 'h':
        fputs("usage: vigil status [options]\n\nAgent health: version, capabilities and why any is off,\n"
              "what could not be recorded, memory and CPU.\n\n", stdout);
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
  auto answers = QueryAll<v1::StatusResponse>(
      *agents, [](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::StatusResponse* r) {
        return stub.GetStatus(ctx, v1::StatusRequest(), r);
      });
  const int rc = ReportFailures(answers);
  if (answers.size() == 1) {
    if (rc == kExitOk) fputs(common.json ? ToJson(answers[0].resp).c_str() : FormatStatus(answers[0].resp).c_str(), stdout);
    return rc;
  }
  v1::FleetStatusResponse fleet;
  std::string text;
  for (auto& a : answers) {
    v1::FleetStatusEntry* e = fleet.add_agents();
    e->set_agent(a.conn.agent);
    if (a.status.ok()) {
      absl::StrAppend(&text, "== ", a.conn.agent, "\n", FormatStatus(a.resp));
      *e->mutable_response() = std::move(a.resp);
    } else {
      e->set_error(std::string(a.status.message()));
    }
  }
  fputs(common.json ? ToJson(fleet).c_str() : text.c_str(), stdout);
  return rc;
}

}  // namespace vigil::cli
