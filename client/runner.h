// The one client runner: parses the command line (CLI11), resolves the
// agents, queries one or many, prints a table or --json, and repeats for
// --watch. A command supplies only its flags, its request and RPC, and its
// table (see status_cmd.cc for the smallest).
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/fleet.h"
#include "client/format.h"

namespace CLI {
class App;
}  // namespace CLI

namespace vigil::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the agent could not answer
inline constexpr int kExitUsage = 2;   // bad flags or arguments

int Main(int argc, char** argv);

// Options accepted before or after the command.
struct GlobalFlags {
  ConnectOptions conn;              // TLS and timeout, shared by all agents
  std::vector<std::string> agents;  // every --agent
  std::string agents_file;
  bool json = false;
};

// What a command runs with, once every flag has parsed.
struct Invocation {
  std::string cmd;  // "syscalls", for messages
  bool json = false;
  std::vector<ConnectOptions> agents;  // resolved and checked
};

// What `vigil --help` (summary) and `vigil CMD --help` (description: usage
// line and paragraphs) say about a command.
struct CommandText {
  const char* name;
  const char* summary;
  const char* description;
};

class Command {
 public:
  explicit Command(const CommandText& text) : text_(text) {}
  virtual ~Command() = default;
  const char* Name() const { return text_.name; }
  const char* Summary() const { return text_.summary; }
  const char* Description() const { return text_.description; }
  // Declares the command's own flags; their callbacks store into the command
  // and throw CLI::ValidationError with a one-line message on a bad value.
  virtual void AddFlags(CLI::App& app) = 0;
  // Checks between flags, after parsing; an error is bad usage.
  virtual absl::Status Check() { return absl::OkStatus(); }
  virtual int Run(const Invocation& inv) = 0;

 private:
  const CommandText text_;
};

// A command about one host (an export, a stream): Run connects to the one
// agent, or is bad usage saying `why` when not exactly one was given, and
// hands the connection to RunOn.
class OneAgentCommand : public Command {
 public:
  OneAgentCommand(const CommandText& text, const char* why) : Command(text), why_(why) {}
  int Run(const Invocation& inv) final;

 protected:
  virtual int RunOn(const Invocation& inv, v1::Vigil::Stub& agent) = 0;

 private:
  const char* why_;
};

// Every command, in `vigil --help` order.
std::vector<std::unique_ptr<Command>> AllCommands();
std::unique_ptr<Command> NewSyscallsCommand();
std::unique_ptr<Command> NewStatusCommand();
std::unique_ptr<Command> NewDropsCommand();
std::unique_ptr<Command> NewHotCommand();
std::unique_ptr<Command> NewProfileCommand(bool flamegraph);
std::unique_ptr<Command> NewAlertsCommand();
std::unique_ptr<Command> NewMemoryCommand();
std::unique_ptr<Command> NewTopCommand();
std::unique_ptr<Command> NewTraceCommand();
std::unique_ptr<Command> NewProbeCommand();

// The command line, parsed apart from running so tests need no agent.
class Cli {
 public:
  Cli();
  ~Cli();
  // Parses args (args[0] is the program). Returns the exit code when parsing
  // alone decides it (help: 0, bad usage: 2); what would be printed goes to
  // *out and *err.
  std::optional<int> Parse(const std::vector<std::string>& args, std::string* out,
                           std::string* err);
  // Resolves the agents and runs the parsed command.
  int Run();

  const GlobalFlags& global() const { return global_; }
  const std::string& command() const { return cmd_name_; }

 private:
  std::optional<int> Usage(const std::string& msg, std::string* err) const;

  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Command>> commands_;
  GlobalFlags global_;
  bool version_ = false;
  Command* cmd_ = nullptr;
  std::string cmd_name_;
};

// Prints "vigil CMD: MSG (see vigil CMD --help)" and returns kExitUsage.
int UsageError(absl::string_view cmd, absl::string_view msg);
// Prints "vigil: MSG" and returns kExitFailed.
int Failure(absl::string_view msg);
// An agent's error: INVALID_ARGUMENT is the user's request (usage), the
// rest a failure.
int AgentError(const Invocation& inv, const absl::Status& s);

// --watch and --every, for commands that refresh.
struct WatchFlags {
  bool on = false;
  absl::Duration every = absl::Seconds(1);
};
void AddWatchFlags(CLI::App& app, WatchFlags* w);

// One query round: the exit code, whether to stop now, and what to print.
struct Round {
  int rc = kExitOk;
  bool stop = false;
  std::string text;
};

// Runs `round` once, or with --watch every w.every until Ctrl-C (exit 0).
int RunRounds(const Invocation& inv, const WatchFlags& w, const std::function<Round()>& round);

// Prints "vigil: ..." for each failed agent; kExitFailed if all failed.
template <typename Answers>
int ReportFailures(const Answers& answers) {
  size_t failed = 0;
  for (const auto& a : answers) {
    if (a.status.ok()) continue;
    ++failed;
    fprintf(stderr, "vigil: %s\n", std::string(a.status.message()).c_str());
  }
  return failed == answers.size() ? kExitFailed : kExitOk;
}

template <typename Resp>
using Answers = std::vector<AgentAnswer<Resp>>;

// A query command's parts.
template <typename Resp>
struct Query {
  std::function<grpc::Status(v1::Vigil::Stub&, grpc::ClientContext*, Resp*)> call;
  std::function<std::string(const Resp&)> table;  // one agent's answer
  // Several agents: what to print (table, or JSON when json).
  std::function<std::string(Answers<Resp>& answers, bool json)> fleet;
};

// The FleetXResponse for --json: per agent, its response or its error.
template <typename Fleet, typename Resp>
Fleet ToFleet(Answers<Resp>& answers) {
  Fleet fleet;
  for (auto& a : answers) {
    auto* e = fleet.add_agents();
    e->set_agent(a.conn.agent);
    if (a.status.ok()) {
      *e->mutable_response() = std::move(a.resp);
    } else {
      e->set_error(std::string(a.status.message()));
    }
  }
  return fleet;
}

// Several agents as "== AGENT" blocks of `table` (JSON: the Fleet message).
template <typename Fleet, typename Resp>
std::function<std::string(Answers<Resp>&, bool)> PerAgentBlocks(
    std::function<std::string(const Resp&)> table, std::string block_end = "") {
  return [table, block_end](Answers<Resp>& answers, bool json) {
    if (json) return ToJson(ToFleet<Fleet>(answers));
    std::string text;
    for (const auto& a : answers) {
      if (a.status.ok()) text += "== " + a.conn.agent + "\n" + table(a.resp) + block_end;
    }
    return text;
  };
}

// Queries every agent once and renders the answers.
template <typename Resp>
Round QueryRound(const Invocation& inv, const Query<Resp>& q) {
  Answers<Resp> answers = QueryAll<Resp>(inv.agents, q.call);
  for (const auto& a : answers) {
    if (a.status.code() == absl::StatusCode::kInvalidArgument)
      return {AgentError(inv, a.status), true, ""};
  }
  Round r;
  r.rc = ReportFailures(answers);
  if (answers.size() != 1) {
    r.text = q.fleet(answers, inv.json);
  } else if (r.rc != kExitOk) {
    r.stop = true;
  } else {
    r.text = inv.json ? ToJson(answers[0].resp) : q.table(answers[0].resp);
  }
  return r;
}

// A unary RPC of the service, e.g. &v1::Vigil::Stub::GetDrops.
template <typename Req, typename Resp>
using Rpc = grpc::Status (v1::Vigil::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

// Query::call for `rpc` with `req`.
template <typename Req, typename Resp>
std::function<grpc::Status(v1::Vigil::Stub&, grpc::ClientContext*, Resp*)> Call(Rpc<Req, Resp> rpc,
                                                                                Req req) {
  return [rpc, req = std::move(req)](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, Resp* r) {
    return (stub.*rpc)(ctx, req, r);
  };
}

// The usual query: `rpc` with `req` on every agent; one agent prints
// `table`, several print it once per agent ("== AGENT" blocks, each followed
// by `block_end`), --json prints the response or the Fleet message.
template <typename Fleet, typename Req, typename Resp, typename Table>
Query<Resp> PerAgentQuery(Rpc<Req, Resp> rpc, Req req, Table table, std::string block_end = "") {
  Query<Resp> q;
  q.call = Call(rpc, std::move(req));
  q.table = std::move(table);
  q.fleet = PerAgentBlocks<Fleet>(q.table, std::move(block_end));
  return q;
}

template <typename Resp>
int RunQuery(const Invocation& inv, const Query<Resp>& q, const WatchFlags& w = {}) {
  return RunRounds(inv, w, [&] { return QueryRound(inv, q); });
}

// For commands about one host (exports, streams): the one agent's stub,
// or nullptr after printing bad usage saying `why` (then exit kExitUsage).
std::unique_ptr<v1::Vigil::Stub> ConnectOne(const Invocation& inv, absl::string_view why);

// While it lives, Ctrl-C or SIGTERM cancels `ctx` instead of killing the
// client, so a streaming command (trace, probe, alerts --follow) still
// prints what it has; the default handlers come back on destruction.
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* ctx);
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;
  // Whether an interrupt came and the context was cancelled.
  bool cancelled() const;

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> cancelled_{false};
  std::thread watcher_;
};

// How a stream ended: its status, and whether Ctrl-C ended it (a stream
// that had already ended on its own is not "interrupted").
struct StreamEnd {
  grpc::Status status;
  bool interrupted = false;
};

// Reads one server stream to its end, handing each message to `on`;
// Ctrl-C cancels it. `open` starts the call on the context it is given.
template <typename Msg>
StreamEnd ReadStream(
    const std::function<std::unique_ptr<grpc::ClientReader<Msg>>(grpc::ClientContext*)>& open,
    absl::Time deadline, const std::function<void(const Msg&)>& on) {
  grpc::ClientContext ctx;
  if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
  CancelOnInterrupt cancel(&ctx);
  std::unique_ptr<grpc::ClientReader<Msg>> reader = open(&ctx);
  Msg m;
  while (reader->Read(&m)) on(m);
  StreamEnd end;
  end.status = reader->Finish();
  end.interrupted = cancel.cancelled() && end.status.error_code() == grpc::StatusCode::CANCELLED;
  return end;
}

}  // namespace vigil::cli
