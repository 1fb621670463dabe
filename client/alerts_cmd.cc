// vigil alerts: spin alerts (threads burning CPU without syscalls), the
// active and recent ones, or --follow to print them as they fire and resolve.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/runner.h"
#include "common/json_line.h"
#include "common/state_names.h"

namespace vigil::cli {
namespace {

std::string MiB(double b) { return absl::StrFormat("%.1f MiB", b / (1 << 20)); }

// A memory-growth alert's first line.
std::string MemoryGrowthLine(const v1::SpinAlert& a) {
  const v1::MemoryGrowthAlert& g = a.memory_growth();
  std::string s = absl::StrFormat(
      "%-8s #%d  %s  memory growth  pid %d  %s  +%s/s  rss %s (from %s)  for %s",
      StateName(a.state()), a.id(), a.host(), a.pid(), a.comm(), MiB(g.growth_bytes_per_s()),
      MiB(static_cast<double>(g.rss_bytes())), MiB(static_cast<double>(g.rss_start_bytes())),
      absl::FormatDuration(absl::Seconds(a.duration_ns() / 1000000000)));
  if (a.state() == v1::ALERT_STATE_FIRING && g.seconds_left() > 0) {
    absl::StrAppend(&s, "  ", g.limit_kind(), " limit ", MiB(static_cast<double>(g.limit_bytes())),
                    " in ",
                    absl::FormatDuration(absl::Seconds(static_cast<int64_t>(g.seconds_left()))));
  }
  return s;
}

std::string FormatAlert(const v1::SpinAlert& a, int stacks) {
  if (a.kind() == v1::ALERT_KIND_MEMORY_GROWTH) {
    std::string s = MemoryGrowthLine(a);
    if (a.state() == v1::ALERT_STATE_RESOLVED) {
      absl::StrAppend(&s, "  resolved: ", a.resolved_reason());
    }
    absl::StrAppend(&s, "\n");
    if (!a.cgroup().empty()) absl::StrAppend(&s, "    cgroup:  ", a.cgroup(), "\n");
    if (a.memory_growth().has_growing_stacks()) {
      absl::StrAppend(&s, FormatGrowingStacks(a.memory_growth().growing_stacks(),
                                              /*leaf_only=*/true, "    "));
    }
    if (a.memory_growth().has_large_map_calls()) {
      absl::StrAppend(&s, FormatLargeMapCalls(a.memory_growth().large_map_calls(),
                                              /*compact=*/true, "    "));
    }
    for (int i = 0; i < a.stacks_size() && i < stacks; ++i) {
      absl::StrAppend(&s, "    stack (", i < a.stack_samples_size() ? a.stack_samples(i) : 0,
                      " samples):\n");
      for (const auto& f : a.stacks(i).values()) {
        absl::StrAppend(&s, "      ", f.string_value(), "\n");
      }
    }
    return s;
  }
  std::string s = absl::StrFormat(
      "%-8s #%d  %s  pid %d tid %d  %s (%s)  cpu %.0f%%  for %s  since %s", StateName(a.state()),
      a.id(), a.host(), a.pid(), a.tid(), a.comm(), a.process_comm(), a.cpu_share() * 100,
      absl::FormatDuration(absl::Seconds(a.duration_ns() / 1000000000)),
      absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixNanos(a.start_unix_ns()),
                       absl::LocalTimeZone()));
  if (a.state() == v1::ALERT_STATE_RESOLVED)
    absl::StrAppend(&s, "  resolved: ", a.resolved_reason());
  absl::StrAppend(&s, "\n");
  if (!a.cmdline().empty()) absl::StrAppend(&s, "    cmdline: ", a.cmdline(), "\n");
  if (!a.cgroup().empty()) absl::StrAppend(&s, "    cgroup:  ", a.cgroup(), "\n");
  if (!a.container_id().empty()) absl::StrAppend(&s, "    container: ", a.container_id(), "\n");
  for (int i = 0; i < a.stacks_size() && i < stacks; ++i) {
    absl::StrAppend(&s, "    stack (", i < a.stack_samples_size() ? a.stack_samples(i) : 0,
                    " samples):\n");
    for (const auto& f : a.stacks(i).values())
      absl::StrAppend(&s, "      ", f.string_value(), "\n");
  }
  return s;
}

class AlertsCommand : public Command {
 public:
  AlertsCommand()
      : Command({"alerts",
                 "alerts: threads spinning without syscalls, processes whose memory keeps growing",
                 R"(usage: vigil alerts [options]

Spin alerts: a thread on CPU for at least spin-cpu-threshold of one CPU
(default 0.9) with no syscalls and no blocking, for at least
spin-min-duration (default 30s). Lists the firing alerts, then the recent
resolved ones, with each thread's hottest stack during the spin.

Memory-growth alerts: a process whose resident memory rose in most
intervals across mem-growth-min-duration (default 60s), by at least
mem-growth-min-bytes (default 64MiB), with its growth rate and how long
until its cgroup's limit (or the host's memory) at that rate. It resolves
when the growth stops or the process exits. --json: `kind` says which.
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddSwitch(app, "--follow", &follow_,
              "print alert events as they fire and resolve (Ctrl-C stops); with --json, one JSON "
              "object per line");
    AddCount(app, "--recent", &recent_, 1, UINT32_MAX, "a positive integer",
             "at most N resolved alerts (default: all the agent keeps)");
    AddCount(app, "--stacks", &stacks_, 0, 100, "an integer in [0, 100]",
             "stacks printed per alert (default 1; --json has all)");
  }

  int Run(const Invocation& inv) override { return follow_ ? Follow(inv) : List(inv); }

 private:
  int List(const Invocation& inv) {
    v1::ListAlertsRequest req;
    req.set_recent(recent_);
    Query<v1::ListAlertsResponse> q;
    q.call = Call(&v1::Vigil::Stub::ListAlerts, std::move(req));
    q.table = [this](const v1::ListAlertsResponse& resp) {
      if (resp.alerts_size() == 0) {
        return absl::StrCat("no spin alerts (", resp.fired_total(),
                            " fired since the agent started)\n");
      }
      std::string s;
      for (const auto& a : resp.alerts()) s += FormatAlert(a, static_cast<int>(stacks_));
      return s;
    };
    // Every alert names its host, so several agents' alerts merge into one
    // list; nothing prints when no agent answered.
    q.fleet = [&](Answers<v1::ListAlertsResponse>& answers, bool json) {
      v1::ListAlertsResponse resp;
      bool any = false;
      for (auto& a : answers) {
        if (!a.status.ok()) continue;
        any = true;
        resp.set_fired_total(resp.fired_total() + a.resp.fired_total());
        for (auto& alert : *a.resp.mutable_alerts()) *resp.add_alerts() = std::move(alert);
      }
      if (!any) return std::string();
      return json ? ToJson(resp) : q.table(resp);
    };
    return RunQuery(inv, q);
  }

  // One agent's stream, no deadline; it ends when the agent stops, or on
  // Ctrl-C (exit 0, as --watch).
  int Follow(const Invocation& inv) {
    std::unique_ptr<v1::Vigil::Stub> stub = ConnectOne(inv, "--follow takes exactly one --agent");
    if (!stub) return kExitUsage;
    v1::WatchAlertsRequest req;
    req.set_include_active(true);
    const StreamEnd end = ReadStream<v1::SpinAlert>(
        [&](grpc::ClientContext* ctx) { return stub->WatchAlerts(ctx, req); },
        absl::InfiniteFuture(),
        [&](const v1::SpinAlert& a) {
          fputs(inv.json ? (JsonLine(a) + "\n").c_str()
                         : FormatAlert(a, static_cast<int>(stacks_)).c_str(),
                stdout);
          fflush(stdout);
        });
    if (end.interrupted) return kExitOk;
    absl::Status s = FromGrpc(end.status, inv.agents.front());
    if (!s.ok()) return Failure(s.message());
    return kExitOk;
  }

  bool follow_ = false;
  uint32_t recent_ = 0, stacks_ = 1;
};

}  // namespace

std::unique_ptr<Command> NewAlertsCommand() { return std::make_unique<AlertsCommand>(); }

}  // namespace vigil::cli
