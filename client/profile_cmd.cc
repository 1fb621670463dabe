// vigil profile / vigil flamegraph: export the agent's sampled stacks as
// pprof, folded stacks, or a self-contained interactive flame graph.
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/profile_export.h"
#include "client/profile_flags.h"

namespace vigil::cli {
namespace {

constexpr char kProfileHelp[] = R"(usage: vigil profile --format pprof|folded -o FILE [options]

Exports every sampled stack in a range of the agent's always-on profiler.
  pprof    gzipped profile.proto (go tool pprof -top FILE)
  folded   one line per stack, "root;...;leaf count" (flamegraph.pl input)

options:
  --format FORMAT    pprof or folded (required)
  -o, --output FILE  where to write (required; - for stdout, folded only)
)";

constexpr char kFlameHelp[] = R"(usage: vigil flamegraph -o FILE.svg|FILE.html [options]

Writes a self-contained interactive flame graph of a range of the agent's
always-on profiler: hover a frame for its name, module and share; click to
zoom; click the bottom frame to zoom out.

options:
  -o, --output FILE  FILE.svg or FILE.html (required)
)";

enum { kFormat = kProfFirstOwn, kOutput };

int RunExport(int argc, char** argv, bool flamegraph) {
  const char* cmd = flamegraph ? "flamegraph" : "profile";
  std::vector<option> own = ProfileFilterOptions();
  if (!flamegraph) own.push_back({"format", required_argument, nullptr, kFormat});
  own.push_back({"output", required_argument, nullptr, kOutput});
  std::vector<option> opts = WithCommonOptions(own);
  CommonFlags common;
  ProfileFilterFlags filter;
  std::string format, output;
  opterr = 0;
  optind = 1;
  int id;
  while ((id = getopt_long(argc, argv, ":ho:", opts.data(), nullptr)) != -1) {
    std::string err;
    if (id >= kProfPid && id < kProfFirstOwn) {
      if (!HandleProfileFilterFlag(id, optarg, &filter, &err)) return UsageError(cmd, err);
      continue;
    }
    switch (id) {
      case kFormat:
        format = optarg;
        if (format != "pprof" && format != "folded") {
          return UsageError(cmd, absl::StrCat("--format \"", format, "\": expected pprof or folded"));
        }
        break;
      case 'o':
      case kOutput: output = optarg; break;
      case kHelp:
      case 'h':
        fputs(flamegraph ? kFlameHelp : kProfileHelp, stdout);
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
  if (!flamegraph && format.empty()) return UsageError(cmd, "--format is required (pprof or folded)");
  if (output.empty()) return UsageError(cmd, "-o FILE is required");
  bool svg = false;
  if (flamegraph) {
    if (absl::EndsWith(output, ".svg")) {
      svg = true;
    } else if (!absl::EndsWith(output, ".html")) {
      return UsageError(cmd, absl::StrCat("-o \"", output, "\": expected a name ending in .svg or .html"));
    }
  }
  if (output == "-" && format != "folded") return UsageError(cmd, "-o - (stdout) works only with --format folded");

  v1::ProfileRequest req;
  ApplyProfileFilter(filter, &req);
  // One file describes one host's profile: exports take a single agent.
  absl::StatusOr<std::vector<ConnectOptions>> agents = AgentsFromFlags(common);
  if (!agents.ok()) return UsageError(cmd, std::string(agents.status().message()));
  if (agents->size() != 1) return UsageError(cmd, "exports take exactly one --agent");
  const ConnectOptions& conn = agents->front();
  absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> stub = Connect(conn);
  if (!stub.ok()) return UsageError(cmd, std::string(stub.status().message()));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, conn);
  v1::ProfileResponse resp;
  absl::Status s = FromGrpc((*stub)->GetProfile(&ctx, req, &resp), conn);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) return UsageError(cmd, std::string(s.message()));
    return Failure(std::string(s.message()));
  }

  std::string data;
  if (flamegraph) {
    std::string title = "vigil flamegraph";
    if (filter.pid != 0) absl::StrAppend(&title, " --pid ", filter.pid);
    if (!filter.comm_regex.empty()) absl::StrAppend(&title, " --comm ", filter.comm_regex);
    absl::StrAppend(&title, " (", resp.samples(), " samples)");
    data = ToFlameGraph(resp, title, svg);
  } else if (format == "folded") {
    data = ToFolded(resp);
  } else {
    absl::StatusOr<std::string> gz = Gzip(ToPprof(resp).SerializeAsString());
    if (!gz.ok()) return Failure(std::string(gz.status().message()));
    data = *std::move(gz);
  }
  if (output == "-") {
    fwrite(data.data(), 1, data.size(), stdout);
    return kExitOk;
  }
  std::ofstream f(output, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) return Failure(absl::StrCat("writing ", output, ": ", strerror(errno)));
  fprintf(stderr, "vigil %s: wrote %s (%llu samples, %d stacks)\n", cmd, output.c_str(),
          static_cast<unsigned long long>(resp.samples()), resp.stacks_size());
  return kExitOk;
}

}  // namespace

int RunProfile(int argc, char** argv) { return RunExport(argc, argv, false); }
int RunFlamegraph(int argc, char** argv) { return RunExport(argc, argv, true); }

}  // namespace vigil::cli
