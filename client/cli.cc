#include "client/cli.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/fleet.h"

namespace vigil::cli {
namespace {

constexpr char kUsage[] = R"(usage: vigil COMMAND [options]

Queries Vigil agents (vigild).

commands:
  syscalls    per-thread syscall counts, errors and latency (strace -c, always on)
  drops       UDP packets the kernel dropped: which socket, which process, why
  status      agent health: capabilities, losses, memory and CPU
  hot         hottest functions by sampled CPU time (perf report, always on)
  profile     export sampled stacks: pprof or folded
  flamegraph  write an interactive flame graph (.svg or .html)
  alerts      spin alerts: threads burning CPU without syscalls (--follow)
  help CMD    help for one command

Run 'vigil COMMAND --help' for a command's options.
Several --agent flags (or --agents-file) query agents concurrently; agents
that fail are reported on stderr while the others answer.
exit codes: 0 ok, 1 no agent could answer, 2 bad usage
)";

}  // namespace

const char kCommonHelp[] = R"(agent options:
  --agent ADDR     unix:/path (default unix:/run/vigil/vigild.sock) or host:port;
                   repeat to query several agents at once
  --agents-file F  one agent address per line ('#' comments)
  --ca FILE        CA certificate for a TLS agent (host:port)
  --cert FILE      client certificate (mutual TLS)
  --key FILE       client private key
  --insecure       plaintext host:port (only for agents started with --insecure-listen)
  --timeout DUR    per-request deadline (default 5s)
  --json           print the gRPC response in proto3 JSON (proto field names)
  -h, --help       this help
)";

std::vector<option> WithCommonOptions(std::vector<option> own) {
  std::vector<option> all = {
      {"agent", required_argument, nullptr, kAgent},
      {"agents-file", required_argument, nullptr, kAgentsFile},
      {"ca", required_argument, nullptr, kCa},
      {"cert", required_argument, nullptr, kCert},
      {"key", required_argument, nullptr, kKey},
      {"insecure", no_argument, nullptr, kInsecure},
      {"timeout", required_argument, nullptr, kTimeout},
      {"json", no_argument, nullptr, kJson},
      {"help", no_argument, nullptr, kHelp},
  };
  all.insert(all.end(), own.begin(), own.end());
  all.push_back({nullptr, 0, nullptr, 0});
  return all;
}

bool HandleCommonFlag(int id, const char* value, CommonFlags* f, std::string* err) {
  switch (id) {
    case kAgent: f->agents.push_back(value); return true;
    case kAgentsFile: f->agents_file = value; return true;
    case kCa: f->conn.ca = value; return true;
    case kCert: f->conn.cert = value; return true;
    case kKey: f->conn.key = value; return true;
    case kInsecure: f->conn.insecure = true; return true;
    case kJson: f->json = true; return true;
    case kTimeout: {
      absl::Duration d;
      if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
        *err = absl::StrCat("--timeout \"", value, "\": expected a positive duration like 5s");
        return false;
      }
      f->conn.timeout = d;
      return true;
    }
    default:
      *err = "internal: unknown shared flag";
      return false;
  }
}

absl::StatusOr<std::vector<ConnectOptions>> AgentsFromFlags(const CommonFlags& flags) {
  absl::StatusOr<std::vector<ConnectOptions>> agents =
      ResolveAgents(flags.agents, flags.agents_file, flags.conn);
  if (!agents.ok()) return agents.status();
  for (const ConnectOptions& a : *agents) {
    if (absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> s = Connect(a); !s.ok()) return s.status();
  }
  return agents;
}

int UsageError(const char* cmd, const std::string& msg) {
  fprintf(stderr, "vigil %s: %s (see vigil %s --help)\n", cmd, msg.c_str(), cmd);
  return kExitUsage;
}

int Failure(const std::string& msg) {
  fprintf(stderr, "vigil: %s\n", msg.c_str());
  return kExitFailed;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    fputs(kUsage, stdout);
    return kExitOk;
  }
  if (cmd == "--version") {
    printf("vigil %s\n", VIGIL_VERSION);
    return kExitOk;
  }
  if (cmd == "help") {
    if (argc < 3) {
      fputs(kUsage, stdout);
      return kExitOk;
    }
    char help[] = "--help";
    std::vector<char*> sub = {argv[0], argv[2], help, nullptr};
    return Main(3, sub.data());
  }
  // Subcommands see argv starting at their own name.
  if (cmd == "syscalls") return RunSyscalls(argc - 1, argv + 1);
  if (cmd == "status") return RunStatus(argc - 1, argv + 1);
  if (cmd == "drops") return RunDrops(argc - 1, argv + 1);
  if (cmd == "hot") return RunHot(argc - 1, argv + 1);
  if (cmd == "profile") return RunProfile(argc - 1, argv + 1);
  if (cmd == "flamegraph") return RunFlamegraph(argc - 1, argv + 1);
  if (cmd == "alerts") return RunAlerts(argc - 1, argv + 1);
  fprintf(stderr, "vigil: unknown command \"%s\" (see vigil --help)\n", cmd.c_str());
  return kExitUsage;
}

}  // namespace vigil::cli
