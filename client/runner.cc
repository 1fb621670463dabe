#include "client/runner.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "client/flags.h"
#include "common/duration.h"

namespace vigil::cli {
namespace {

constexpr char kAgentGroup[] = "agent options (before or after the command)";

constexpr char kFooter[] =
    R"(Several --agent flags (or --agents-file) query agents concurrently; agents
that fail are reported on stderr while the others answer.
exit codes: 0 ok, 1 no agent could answer, 2 bad usage
)";

std::atomic<bool> g_interrupted{false};

// Ctrl-C and SIGTERM only set g_interrupted: --watch and the streaming
// commands stop at their next check and print what they have.
void CatchInterrupts() {
  signal(SIGINT, [](int) { g_interrupted = true; });
  signal(SIGTERM, [](int) { g_interrupted = true; });
}

// Help in vigil's layout: "usage:" first (the command's description starts
// with it), its options, then the agent options every command takes.
class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(const std::vector<std::unique_ptr<Command>>* commands)
      : commands_(commands) {}

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
    const CLI::App* root = app->get_parent() != nullptr ? app->get_parent() : app;
    std::string out = app->get_description();
    if (app == root) {
      out += "\ncommands:\n";
      for (const auto& c : *commands_)
        out += absl::StrFormat("  %-11s %s\n", c->Name(), c->Summary());
      out +=
          "  help CMD    help for one command\n\nRun 'vigil COMMAND --help' for a command's "
          "options.\n";
    } else {
      out += make_group("options", false, app->get_options());
    }
    out += make_group(kAgentGroup, false, root->get_options([&](const CLI::Option* o) {
      return o->get_group() == kAgentGroup && (app == root || o != root->get_help_ptr());
    }));
    return out + "\n" + kFooter;
  }

 private:
  const std::vector<std::unique_ptr<Command>>* commands_;
};

// CLI11's messages are one line already; this keeps it so.
std::string OneLine(std::string s) { return absl::StrReplaceAll(s, {{"\n", " "}}); }

}  // namespace

std::vector<std::unique_ptr<Command>> AllCommands() {
  std::vector<std::unique_ptr<Command>> all;
  all.push_back(NewTopCommand());
  all.push_back(NewSyscallsCommand());
  all.push_back(NewDropsCommand());
  all.push_back(NewStatusCommand());
  all.push_back(NewHotCommand());
  all.push_back(NewProfileCommand(false));
  all.push_back(NewProfileCommand(true));
  all.push_back(NewAlertsCommand());
  all.push_back(NewMemoryCommand());
  all.push_back(NewTraceCommand());
  all.push_back(NewProbeCommand());
  return all;
}

Cli::Cli()
    : app_(std::make_unique<CLI::App>(
          "usage: vigil COMMAND [options]\n\nQueries Vigil agents (vigild).\n", "vigil")),
      commands_(AllCommands()) {
  CLI::App& app = *app_;
  app.formatter(std::make_shared<HelpFormatter>(&commands_));
  // getopt semantics: a repeated flag's last value wins (--agent collects).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Global options also after the command: the command hands what it does
  // not know to this app.
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.add_flag("--version", version_, "print the version");

  app.option_defaults()->group(kAgentGroup);
  app.add_option("--agent", global_.agents,
                 "unix:/path (default unix:/run/vigil/vigild.sock) or host:port; repeat to query "
                 "several agents")
      ->type_name("ADDR")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  AddText(app, "--agents-file", &global_.agents_file, "FILE",
          "one agent address per line ('#' comments)");
  AddText(app, "--ca", &global_.conn.ca, "FILE", "CA certificate for a TLS agent (host:port)");
  AddText(app, "--cert", &global_.conn.cert, "FILE", "client certificate (mutual TLS)");
  AddText(app, "--key", &global_.conn.key, "FILE", "client private key");
  AddSwitch(app, "--insecure", &global_.conn.insecure,
            "plaintext host:port (only for agents started with --insecure-listen)");
  // An hour bounds the deadline: "inf" would overflow it into "unreachable".
  AddDuration(app, "--timeout", &global_.conn.timeout, absl::Nanoseconds(1), absl::Hours(1),
              "per-request deadline (default 5s, at most 1h)");
  AddSwitch(app, "--json", &global_.json,
            "print the gRPC response in proto3 JSON (proto field names)");
  app.set_help_flag("-h,--help", "this help")->group(kAgentGroup);

  for (const auto& c : commands_) {
    CLI::App* sub = app.add_subcommand(c->Name(), c->Description());
    sub->option_defaults()->group("options");
    sub->set_help_flag("-h,--help", "this help")->group("options");
    c->AddFlags(*sub);
  }
}

Cli::~Cli() = default;

std::optional<int> Cli::Usage(const std::string& msg, std::string* err) const {
  if (cmd_name_.empty()) {
    absl::StrAppend(err, "vigil: ", msg, " (see vigil --help)\n");
  } else {
    absl::StrAppend(err, "vigil ", cmd_name_, ": ", msg, " (see vigil ", cmd_name_, " --help)\n");
  }
  return kExitUsage;
}

std::optional<int> Cli::Parse(const std::vector<std::string>& args, std::string* out,
                              std::string* err) {
  if (args.size() < 2) {
    *err += app_->help();
    return kExitUsage;
  }
  std::vector<std::string> a = args;
  if (a[1] == "help") {  // `vigil help CMD` is `vigil CMD --help`
    if (a.size() < 3) {
      *out += app_->help();
      return kExitOk;
    }
    bool known = false;
    for (const auto& c : commands_) known = known || a[2] == c->Name();
    if (!known) return Usage(absl::StrCat("unknown command ", QuoteValue(a[2])), err);
    a = {a[0], a[2], "--help"};
  }
  std::vector<const char*> argv;
  for (const std::string& s : a) argv.push_back(s.c_str());
  try {
    app_->parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    *out += app_->help();  // the chosen command's, if any
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    if (!app_->get_subcommands().empty()) cmd_name_ = app_->get_subcommands()[0]->get_name();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      std::vector<std::string> extra = app_->remaining(true);
      const std::string x = extra.empty() ? "" : extra[0];
      // What the user typed is quoted cut and escaped: one short line.
      if (absl::StartsWith(x, "-")) return Usage("unknown option " + QuoteValue(x), err);
      if (cmd_name_.empty()) return Usage(absl::StrCat("unknown command ", QuoteValue(x)), err);
      return Usage(absl::StrCat("unexpected argument ", QuoteValue(x)), err);
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
      // CLI11: "--pid: 1 required N missing".
      const std::string what = e.what();
      const size_t colon = what.find(':');
      if (colon != std::string::npos && absl::StrContains(what, "missing")) {
        return Usage(what.substr(0, colon) + " needs a value", err);
      }
    }
    return Usage(OneLine(e.what()), err);
  }
  if (version_) {
    absl::StrAppend(out, "vigil ", VIGIL_VERSION, "\n");
    return kExitOk;
  }
  if (app_->get_subcommands().empty()) return Usage("no command given", err);
  cmd_name_ = app_->get_subcommands()[0]->get_name();
  for (const auto& c : commands_) {
    if (cmd_name_ == c->Name()) cmd_ = c.get();
  }
  if (absl::Status s = cmd_->Check(); !s.ok()) return Usage(std::string(s.message()), err);
  return std::nullopt;
}

int Cli::Run() {
  Invocation inv;
  inv.cmd = cmd_name_;
  inv.json = global_.json;
  absl::StatusOr<std::vector<ConnectOptions>> agents =
      ResolveAgents(global_.agents, global_.agents_file, global_.conn);
  if (!agents.ok()) return UsageError(inv.cmd, agents.status().message());
  // Bad addresses and TLS files are usage, before any agent is asked.
  for (const ConnectOptions& a : *agents) {
    if (absl::Status s = CheckConnect(a); !s.ok()) return UsageError(inv.cmd, s.message());
  }
  inv.agents = *std::move(agents);
  return cmd_->Run(inv);
}

int Main(int argc, char** argv) {
  Cli cli;
  std::string out, err;
  std::optional<int> rc = cli.Parse(std::vector<std::string>(argv, argv + argc), &out, &err);
  fputs(out.c_str(), stdout);
  fputs(err.c_str(), stderr);
  return rc ? *rc : cli.Run();
}

int UsageError(absl::string_view cmd, absl::string_view msg) {
  fprintf(stderr, "%s\n",
          absl::StrCat("vigil ", cmd, ": ", msg, " (see vigil ", cmd, " --help)").c_str());
  return kExitUsage;
}

int Failure(absl::string_view msg) {
  fprintf(stderr, "vigil: %s\n", std::string(msg).c_str());
  return kExitFailed;
}

int AgentError(const Invocation& inv, const absl::Status& s) {
  if (s.code() == absl::StatusCode::kInvalidArgument) return UsageError(inv.cmd, s.message());
  return Failure(s.message());
}

void AddWatchFlags(CLI::App& app, WatchFlags* w) {
  AddSwitch(app, "--watch", &w->on, "refresh every --every until Ctrl-C");
  AddDuration(app, "--every", &w->every, absl::Milliseconds(100), absl::Hours(24),
              "refresh period for --watch (default 1s)");
}

int RunRounds(const Invocation& inv, const WatchFlags& w, const std::function<Round()>& round) {
  if (w.on) CatchInterrupts();
  const bool tty = isatty(STDOUT_FILENO);
  int rc = kExitOk;
  do {
    Round r = round();
    if (r.stop) return r.rc;
    rc = r.rc;
    if (w.on && !inv.json) {
      if (tty) fputs("\033[H\033[2J", stdout);
      printf("vigil %s --watch (every %s, Ctrl-C to stop) %s\n", inv.cmd.c_str(),
             absl::FormatDuration(w.every).c_str(),
             absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()).c_str());
    }
    fputs(r.text.c_str(), stdout);
    fflush(stdout);
    if (!w.on) break;
    const absl::Time until_next = absl::Now() + w.every;
    while (!g_interrupted && absl::Now() < until_next) absl::SleepFor(absl::Milliseconds(50));
  } while (!g_interrupted);
  return w.on ? kExitOk : rc;
}

int OneAgentCommand::Run(const Invocation& inv) {
  std::unique_ptr<v1::Vigil::Stub> stub = ConnectOne(inv, why_);
  if (!stub) return kExitUsage;
  return RunOn(inv, *stub);
}

std::unique_ptr<v1::Vigil::Stub> ConnectOne(const Invocation& inv, absl::string_view why) {
  absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> stub =
      inv.agents.size() == 1 ? Connect(inv.agents.front()) : absl::InvalidArgumentError(why);
  if (!stub.ok()) {
    UsageError(inv.cmd, stub.status().message());
    return nullptr;
  }
  return *std::move(stub);
}

CancelOnInterrupt::CancelOnInterrupt(grpc::ClientContext* ctx) {
  g_interrupted = false;
  CatchInterrupts();
  // TryCancel is not async-signal-safe, so a thread calls it.
  watcher_ = std::thread([this, ctx] {
    while (!done_) {
      if (g_interrupted) {
        cancelled_ = true;
        ctx->TryCancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

CancelOnInterrupt::~CancelOnInterrupt() {
  done_ = true;
  watcher_.join();
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

bool CancelOnInterrupt::cancelled() const { return cancelled_; }

}  // namespace vigil::cli
