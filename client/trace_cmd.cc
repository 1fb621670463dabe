// vigil trace: a process's syscalls as they happen, one line each (the
// `strace -f -p` view), streamed by the agent already running on the host.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/flags.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

// A JSON string literal (the agent sends valid UTF-8; control characters
// are escaped here).
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// One JSON object per event: time, pid, tid, comm, syscall, args, ret,
// errno (null on success), duration_ns, unfinished.
std::string EventJson(const v1::TraceEvent& e) {
  std::vector<std::string> args;
  for (const std::string& a : e.args()) args.push_back(JsonString(a));
  std::string s = absl::StrCat("{\"enter_unix_ns\":", e.enter_unix_ns(), ",\"pid\":", e.pid(),
                               ",\"tid\":", e.tid(), ",\"comm\":", JsonString(e.comm()),
                               ",\"syscall\":", JsonString(e.syscall()), ",\"nr\":", e.nr(),
                               ",\"args\":[", absl::StrJoin(args, ","), "]");
  if (e.no_return()) {
    absl::StrAppend(&s, ",\"ret\":null,\"errno\":null");
  } else {
    absl::StrAppend(&s, ",\"ret\":", e.ret(),
                    ",\"errno\":", e.errno_name().empty() ? "null" : JsonString(e.errno_name()));
  }
  absl::StrAppend(&s, ",\"duration_ns\":", e.duration_ns(),
                  ",\"unfinished\":", e.unfinished() ? "true" : "false", "}");
  return s;
}

// strace -f -tt -T: "12:00:01.123456 [pid 42] openat(AT_FDCWD, "/x", O_RDONLY) = -1 ENOENT
// <0.000012>"
std::string EventLine(const v1::TraceEvent& e) {
  std::string when = e.unfinished()
                         ? std::string(15, ' ')
                         : absl::FormatTime("%H:%M:%E6S", absl::FromUnixNanos(e.enter_unix_ns()),
                                            absl::LocalTimeZone());
  std::string s = absl::StrCat(when, " [", e.tid(), " ", e.comm(), "] ");
  if (e.unfinished()) absl::StrAppend(&s, "<... ");
  absl::StrAppend(&s, e.syscall(), "(", absl::StrJoin(e.args(), ", "), ")");
  if (e.unfinished()) absl::StrAppend(&s, " resumed>");
  if (e.no_return()) return s + " = ?";
  const std::string_view name = e.syscall();
  const bool address = name == "mmap" || name == "brk" || name == "mremap";
  if (!e.errno_name().empty()) {
    absl::StrAppend(&s, " = -1 ", e.errno_name());
  } else if (address) {
    absl::StrAppendFormat(&s, " = %#x", static_cast<uint64_t>(e.ret()));
  } else {
    absl::StrAppend(&s, " = ", e.ret());
  }
  if (!e.unfinished()) {
    absl::StrAppendFormat(&s, " <%.6f>", static_cast<double>(e.duration_ns()) / 1e9);
  }
  return s;
}

std::string LossLine(const v1::TraceLoss& l) {
  std::vector<std::string> parts;
  if (l.rate_limited()) {
    parts.push_back(absl::StrCat(l.rate_limited(), " over the agent's events-per-second limit"));
  }
  if (l.ring_full()) parts.push_back(absl::StrCat(l.ring_full(), " with the ring buffer full"));
  if (l.pids_untracked()) {
    parts.push_back(absl::StrCat(l.pids_untracked(), " child processes not followed"));
  }
  return parts.empty() ? "" : absl::StrCat("lost: ", absl::StrJoin(parts, ", "));
}

class TraceCommand : public OneAgentCommand {
 public:
  TraceCommand()
      : OneAgentCommand(
            {"trace", "a process's syscalls as they happen, with arguments (strace -f -p)",
             R"(usage: vigil trace --pid PID [options]

Streams every syscall of process PID (its threads, and the processes it
forks while traced) as it returns: time, thread, name, decoded arguments,
return value or error, and duration, as `strace -f -tt -T -y` prints them.
Strings (paths) are copied up to 255 bytes; fds show the path behind them.

Filtering happens in the kernel; the agent passes on at most
trace-max-events-per-second events and counts the rest, shown at the end.
The agent must run with --allow-trace. The programs are attached only while
a session runs. Ends after --duration, when the process exits, or on
Ctrl-C. Exit status: 0, 1 if the agent failed, 2 for bad usage.
)"},
            "trace takes exactly one --agent") {}

  void AddFlags(CLI::App& app) override {
    AddCount(app, "--pid", &pid_, 1, UINT32_MAX, "a process id", "process to trace (required)");
    AddCount(app, "--tid", &tid_, 1, UINT32_MAX, "a thread id", "only this thread");
    AddRegex(app, "--comm", &comm_, "only threads whose name matches this RE2");
    app.add_option_function<std::vector<std::string>>(
           "--syscall",
           [this](const std::vector<std::string>& v) {
             for (const std::string& item : v) {
               for (absl::string_view name : absl::StrSplit(item, ',', absl::SkipEmpty())) {
                 syscalls_.emplace_back(name);
               }
             }
           },
           "only these syscalls, e.g. openat,read (repeatable)")
        ->type_name("NAME,...");
    AddSwitch(app, "--failed", &failed_, "only calls that returned an error");
    AddDuration(app, "--duration", &duration_, absl::Seconds(1), absl::Hours(24),
                "how long to trace (default 10s; the agent caps it, 5m unless configured)");
  }

  absl::Status Check() override {
    if (pid_ == 0) return absl::InvalidArgumentError("--pid is required");
    return absl::OkStatus();
  }

  int RunOn(const Invocation& inv, v1::Vigil::Stub& agent) override {
    v1::TraceRequest req;
    req.set_pid(pid_);
    req.set_tid(tid_);
    req.set_comm_regex(comm_);
    for (const std::string& s : syscalls_) req.add_syscalls(s);
    req.set_failed_only(failed_);
    req.set_duration_ns(absl::ToInt64Nanoseconds(duration_));
    std::string ended;
    v1::TraceSessionInfo last;
    uint64_t printed = 0;
    // The stream lasts the session; a little more for the last messages.
    // Ctrl-C ends it as strace's does: the summary is still printed.
    const StreamEnd end = ReadStream<v1::TraceMessage>(
        [&](grpc::ClientContext* ctx) { return agent.Trace(ctx, req); },
        absl::Now() + duration_ + absl::Seconds(30),
        [&](const v1::TraceMessage& m) {
          for (const v1::TraceEvent& e : m.events()) {
            const std::string line = inv.json ? EventJson(e) : EventLine(e);
            fprintf(stdout, "%s\n", line.c_str());
            ++printed;
          }
          if (m.has_info()) {
            last = m.info();
            if (last.ended()) {
              ended = last.message();
            } else if (last.message() != "events lost") {
              fprintf(stderr, "vigil trace: %s\n", last.message().c_str());
            } else if (const std::string l = LossLine(last.loss()); !l.empty()) {
              fprintf(stderr, "vigil trace: %s so far\n", l.c_str());
            }
          }
          fflush(stdout);
        });
    if (end.interrupted) {
      ended = "interrupted";
    } else if (absl::Status s = FromGrpc(end.status, inv.agents.front()); !s.ok()) {
      return AgentError(inv, s);
    }
    // Interrupted, the agent's last count may trail what was printed.
    std::string summary = absl::StrCat(end.interrupted ? printed : last.events(),
                                       " events; ended: ", ended.empty() ? "stream closed" : ended);
    if (const std::string l = LossLine(last.loss()); !l.empty()) absl::StrAppend(&summary, "; ", l);
    fprintf(stderr, "vigil trace: %s\n", summary.c_str());
    return kExitOk;
  }

 private:
  uint32_t pid_ = 0, tid_ = 0;
  std::string comm_;
  std::vector<std::string> syscalls_;
  bool failed_ = false;
  absl::Duration duration_ = absl::Seconds(10);
};

}  // namespace

std::unique_ptr<Command> NewTraceCommand() { return std::make_unique<TraceCommand>(); }

}  // namespace vigil::cli
