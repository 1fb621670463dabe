// vigil probe: uprobes, uretprobes or a USDT probe on one process for a
// while (dtrace's pid provider, funccount/funclatency), then one report:
// calls per function and thread, a log2 latency histogram, the top calling
// stacks and argument values.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/flags.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

std::string Stars(uint64_t n, uint64_t max, int width) {
  if (max == 0) return std::string(static_cast<size_t>(width), ' ');
  const int k = static_cast<int>(static_cast<double>(n) * width / static_cast<double>(max));
  return std::string(static_cast<size_t>(k), '*') +
         std::string(static_cast<size_t>(width - k), ' ');
}

std::string FrameText(const v1::ProfileFrame& f) {
  std::string module = f.module();
  size_t slash = module.rfind('/');
  if (slash != std::string::npos) module = module.substr(slash + 1);
  if (f.name().empty()) return absl::StrFormat("%s+0x%x", module, f.offset());
  return absl::StrFormat("%s+0x%x (%s)", f.name(), f.offset(), module);
}

std::string FormatFunction(const v1::ProbeFunction& f, int max_frames) {
  std::string s = absl::StrFormat("%s  (%s)  %d calls\n", f.name(), f.binary(), f.calls());
  if (f.threads_size() > 0) {
    s += absl::StrFormat("  %-8s %-16s %12s\n", "TID", "COMM", "CALLS");
    for (const auto& t : f.threads()) {
      s += absl::StrFormat("  %-8d %-16s %12d\n", t.tid(), t.comm(), t.calls());
    }
  }
  if (f.latency_size() > 0) {
    uint64_t max = 0;
    for (const auto& b : f.latency()) max = std::max(max, b.count());
    s += absl::StrFormat("  %24s : %-10s distribution\n", "nsecs", "count");
    for (const auto& b : f.latency()) {
      s += absl::StrFormat("  %10d -> %-10d : %-10d |%s|\n", b.low_ns(),
                           b.high_ns() == 0 ? 0 : b.high_ns() - 1, b.count(),
                           Stars(b.count(), max, 40));
    }
    const uint64_t returned = f.calls() - std::min(f.calls(), f.unreturned());
    if (returned > 0) {
      s += absl::StrCat("  avg ", HumanNs(f.latency_sum_ns() / returned), " over ", returned,
                        " returns");
      s += f.unreturned() > 0 ? absl::StrCat(", ", f.unreturned(), " calls unreturned\n") : "\n";
    }
  }
  for (const auto& st : f.stacks()) {
    s += absl::StrFormat("  %d calls from:\n", st.calls());
    int n = 0;
    for (const auto& fr : st.frames()) {
      if (max_frames > 0 && n++ >= max_frames) {
        s += absl::StrFormat("      ... %d more frames\n", st.frames_size() - max_frames);
        break;
      }
      s += "      " + FrameText(fr) + "\n";
    }
  }
  for (const auto& a : f.args()) {
    s += absl::StrFormat("  arg%d: ", a.index());
    if (a.top_size() == 0) s += "(none)";
    for (int i = 0; i < a.top_size(); ++i) {
      const auto& v = a.top(i);
      s += absl::StrFormat("%s%d (0x%x) x%d", i > 0 ? ", " : "", static_cast<int64_t>(v.value()),
                           v.value(), v.calls());
    }
    s += "\n";
  }
  return s;
}

std::string FormatProbe(const v1::ProbeReport& r, int max_frames) {
  std::string s =
      absl::StrCat(r.calls(), " calls in ", HumanNs(static_cast<uint64_t>(r.elapsed_ns())),
                   r.message().empty() ? "" : " (" + r.message() + ")", "\n");
  for (const auto& f : r.functions()) s += FormatFunction(f, max_frames);
  const auto& l = r.loss();
  if (l.stacks_dropped() + l.threads_dropped() + l.args_dropped() > 0) {
    s += absl::StrCat("not recorded: ", l.stacks_dropped(), " stacks, ", l.threads_dropped(),
                      " per-thread counts, ", l.args_dropped(), " argument values\n");
  }
  return s;
}

class ProbeCommand : public OneAgentCommand {
 public:
  ProbeCommand()
      : OneAgentCommand(
            {"probe", "count, time and trace calls of a running process's functions",
             "usage: vigil probe --pid PID TARGET [--latency] [--stacks] [--args N] "
             "[--duration 30s] [--json]\n\n"
             "Attaches uprobes (and uretprobes with --latency), or one USDT probe, to a\n"
             "running process until --duration ends, the process exits or Ctrl-C; then\n"
             "prints calls per function and thread, a log2 latency histogram, the top\n"
             "calling stacks and the most frequent argument values. TARGET is\n"
             "  FUNCTION or GLOB            in the main executable (\"main\", \"rd_kafka_*\")\n"
             "  LIB:FUNCTION                in a mapped library (\"libc:malloc\"; LIB is a\n"
             "                              path or a name like libc)\n"
             "  usdt:LIB:PROVIDER:NAME      a USDT probe (\"usdt:python3.11:python:gc__start\")\n"
             "C++ names match demangled, with or without the parameter list. The agent must\n"
             "run with --allow-probe; a glob may match at most probe-max-functions.\n"},
            "probe takes exactly one --agent") {}

  void AddFlags(CLI::App& app) override {
    AddCount(app, "--pid", &pid_, 1, UINT32_MAX, "a process id", "process to probe (required)");
    app.add_option("target", target_, "FUNCTION, LIB:FUNCTION or usdt:LIB:PROVIDER:NAME");
    AddSwitch(app, "--latency", &latency_, "time each call (uretprobe) into a log2 histogram");
    AddSwitch(app, "--stacks", &stacks_,
              "record the calling stacks (needs the agent's profiler: its unwinder walks them)");
    AddCount(app, "--args", &args_, 0, 6, "an integer in [0, 6]",
             "record the first N integer arguments (default 0)");
    AddDuration(app, "--duration", &duration_, absl::Nanoseconds(1), absl::Hours(24),
                "how long to probe (default 30s; the agent's session-max-duration caps it)");
    AddCount(app, "--frames", &frames_, 0, 1000, "an integer in [0, 1000]",
             "frames printed per stack (default 16; 0: all; --json has all)");
  }

  absl::Status Check() override {
    if (pid_ == 0) return absl::InvalidArgumentError("--pid is required");
    if (target_.empty()) {
      return absl::InvalidArgumentError(
          "a TARGET is required (FUNCTION, LIB:FUNCTION or usdt:LIB:PROVIDER:NAME)");
    }
    return absl::OkStatus();
  }

  int RunOn(const Invocation& inv, v1::Vigil::Stub& agent) override {
    v1::ProbeRequest req;
    req.set_pid(pid_);
    req.set_target(target_);
    req.set_latency(latency_);
    req.set_stacks(stacks_);
    req.set_args(args_);
    req.set_duration_ns(absl::ToInt64Nanoseconds(duration_));

    // Ctrl-C cancels the stream; the last cumulative report is printed.
    v1::ProbeReport last;
    bool have = false, ended = false;
    const bool progress = isatty(STDERR_FILENO) && !inv.json;
    const int64_t total_ns = absl::ToInt64Nanoseconds(duration_);
    const StreamEnd end = ReadStream<v1::ProbeReport>(
        [&](grpc::ClientContext* ctx) { return agent.Probe(ctx, req); }, absl::InfiniteFuture(),
        [&](const v1::ProbeReport& r) {
          // The first report says what was attached.
          if (!have && progress) fprintf(stderr, "%s\n", r.message().c_str());
          last = r;
          have = true;
          ended = r.ended();
          if (progress && !ended) {
            fprintf(stderr,
                    "\rprobing %d functions in pid %u: %" PRIu64 " calls, %" PRId64 "s left  ",
                    r.functions_size(), pid_, r.calls(),
                    std::max<int64_t>(0, (total_ns - r.elapsed_ns()) / 1000000000));
          }
        });
    if (progress && have) fprintf(stderr, "\r\033[K");
    if (!end.status.ok() && !(end.interrupted && have)) {
      if (end.interrupted) return Failure("interrupted before the first report");
      return AgentError(inv, FromGrpc(end.status, inv.agents.front()));
    }
    if (!have) return Failure("the agent ended the session without a report");
    if (!ended) last.set_message("interrupted");
    if (inv.json) {
      fputs((ToJson(last) + "\n").c_str(), stdout);
    } else {
      fputs(FormatProbe(last, static_cast<int>(frames_)).c_str(), stdout);
    }
    return kExitOk;
  }

 private:
  uint32_t pid_ = 0, args_ = 0, frames_ = 16;
  std::string target_;
  bool latency_ = false, stacks_ = false;
  absl::Duration duration_ = absl::Seconds(30);
};

}  // namespace

std::unique_ptr<Command> NewProbeCommand() { return std::make_unique<ProbeCommand>(); }

}  // namespace vigil::cli
