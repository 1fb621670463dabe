// vigil status: is the agent healthy, and what could it not record?
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
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
  absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> stub = Connect(common.conn);
  if (!stub.ok()) return UsageError(cmd, std::string(stub.status().message()));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, common.conn);
  v1::StatusResponse resp;
  absl::Status s = FromGrpc((*stub)->GetStatus(&ctx, v1::StatusRequest(), &resp), common.conn);
  if (!s.ok()) return Failure(std::string(s.message()));
  fputs(common.json ? ToJson(resp).c_str() : FormatStatus(resp).c_str(), stdout);
  return kExitOk;
}

}  // namespace vigil::cli
