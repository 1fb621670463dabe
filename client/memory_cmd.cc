// vigil memory: which processes hold the memory and which are growing, a
// process's timeline, memory cgroups against their limits, and OOM kills.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

std::string Clock(int64_t unix_ns) {
  return absl::FormatTime("%H:%M:%S", absl::FromUnixNanos(unix_ns), absl::LocalTimeZone());
}

// How long until `room` bytes are used at `rate` bytes/s; "-" if not growing.
std::string TimeLeft(double room, double rate) {
  if (rate <= 0 || room <= 0) return "-";
  const double s = room / rate;
  if (s > 86400 * 365) return "-";
  return absl::FormatDuration(absl::Seconds(std::round(s)));
}

// The tighter of the process's cgroup limit and the host's available memory.
std::string FullIn(const v1::MemoryResponse& r, const v1::ProcessMemory& p) {
  if (p.growth_bytes_per_s() <= 0) return "-";
  double room = static_cast<double>(r.host_available_bytes());
  for (const v1::CgroupMemory& c : r.cgroups()) {
    if (c.path() == p.cgroup() && c.limit_bytes() > 0) {
      room = std::min(room,
                      static_cast<double>(c.limit_bytes()) - static_cast<double>(c.usage_bytes()));
    }
  }
  return TimeLeft(room, p.growth_bytes_per_s());
}

std::string FormatMemory(const v1::MemoryResponse& r, bool with_pid) {
  std::string out;
  absl::StrAppendFormat(&out, "host: %s total, %s available; %u intervals",
                        HumanBytes(r.host_total_bytes()), HumanBytes(r.host_available_bytes()),
                        r.covered().intervals());
  if (r.covered().intervals() > 0) {
    absl::StrAppend(&out, " from ", Clock(r.covered().start_unix_ns()), " to ",
                    Clock(r.covered().end_unix_ns()));
  }
  out += "\n\n";
  absl::StrAppendFormat(&out, "%8s %-16s %10s %10s %10s %10s %10s %12s %11s %10s  %s\n", "PID",
                        "COMM", "RSS", "ANON", "FILE", "SHMEM", "SWAP", "GROWTH/s", "CHANGE",
                        "FULL IN", "CGROUP");
  for (const v1::ProcessMemory& p : r.processes()) {
    absl::StrAppendFormat(&out, "%8u %-16s %10s %10s %10s %10s %10s %12s %11s %10s  %s\n", p.pid(),
                          p.comm(), HumanBytes(p.rss_bytes()), HumanBytes(p.anon_bytes()),
                          HumanBytes(p.file_bytes()), HumanBytes(p.shmem_bytes()),
                          HumanBytes(p.swap_bytes()), HumanBytes(p.growth_bytes_per_s()),
                          HumanBytes(p.rss_change_bytes()), FullIn(r, p), p.cgroup());
  }
  if (r.processes().empty()) out += "(no process in the range)\n";
  if (r.rows_omitted() > 0) absl::StrAppend(&out, "(", r.rows_omitted(), " more processes)\n");
  if (with_pid && !r.timeline().empty()) {
    out += "\ntimeline:\n";
    absl::StrAppendFormat(&out, "%10s %10s %10s %10s %10s %10s\n", "TIME", "RSS", "ANON", "FILE",
                          "SHMEM", "SWAP");
    // At most 30 rows, evenly spaced, always with the last one.
    const int n = r.timeline_size();
    const int step = n > 30 ? (n + 29) / 30 : 1;
    for (int i = (n - 1) % step; i < n; i += step) {
      const v1::MemorySample& s = r.timeline(i);
      absl::StrAppendFormat(&out, "%10s %10s %10s %10s %10s %10s\n", Clock(s.unix_ns()),
                            HumanBytes(s.rss_bytes()), HumanBytes(s.anon_bytes()),
                            HumanBytes(s.file_bytes()), HumanBytes(s.shmem_bytes()),
                            HumanBytes(s.swap_bytes()));
    }
  }
  if (with_pid && r.has_growing_stacks()) {
    out += "\n";
    out += FormatGrowingStacks(r.growing_stacks(), /*leaf_only=*/false, "");
  }
  if (with_pid && r.has_large_map_calls()) {
    out += "\n";
    out += FormatLargeMapCalls(r.large_map_calls(), /*compact=*/false, "");
  }
  if (!with_pid && !r.cgroups().empty()) {
    out += "\nmemory cgroups:\n";
    absl::StrAppendFormat(&out, "%10s %10s %12s %10s %6s  %s\n", "USAGE", "LIMIT", "GROWTH/s",
                          "FULL IN", "PROCS", "PATH");
    for (const v1::CgroupMemory& c : r.cgroups()) {
      const double room = c.limit_bytes() > 0 ? static_cast<double>(c.limit_bytes()) -
                                                    static_cast<double>(c.usage_bytes())
                                              : static_cast<double>(r.host_available_bytes());
      absl::StrAppendFormat(&out, "%10s %10s %12s %10s %6u  %s\n", HumanBytes(c.usage_bytes()),
                            c.limit_bytes() > 0 ? HumanBytes(c.limit_bytes()) : "none",
                            HumanBytes(c.growth_bytes_per_s()),
                            TimeLeft(room, c.growth_bytes_per_s()), c.processes(), c.path());
    }
  }
  if (!r.oom_kills().empty()) {
    out += "\nOOM kills:\n";
    for (const v1::OomKill& k : r.oom_kills()) {
      absl::StrAppendFormat(
          &out, "%s  killed %u %s (rss %s%s) in %s; allocation by %u %s\n", Clock(k.unix_ns()),
          k.victim_pid(), k.victim_comm(), HumanBytes(k.victim_rss_bytes()),
          k.victim_rss_at_kill() ? "" : " at its last sample",
          k.victim_cgroup().empty() ? "?" : k.victim_cgroup(), k.trigger_pid(), k.trigger_comm());
    }
  }
  const v1::MemoryLoss& l = r.loss();
  if (l.processes_over_cap() + l.cgroups_over_cap() + l.oom_ringbuf_full() + l.read_failed() +
          l.store_dropped() >
      0) {
    absl::StrAppendFormat(&out,
                          "\nnot recorded: processes_over_cap %u, cgroups_over_cap %u, "
                          "oom_ringbuf_full %u, read_failed %u, store_dropped %u\n",
                          l.processes_over_cap(), l.cgroups_over_cap(), l.oom_ringbuf_full(),
                          l.read_failed(), l.store_dropped());
  }
  return out;
}

class MemoryCommand : public Command {
 public:
  MemoryCommand()
      : Command({"memory",
                 "memory over time: largest and fastest-growing processes, cgroups, OOM kills",
                 R"(usage: vigil memory [options]

Every process's resident memory (anon, file, shmem) and swap, sampled each
interval from the kernel's own counters (what /proc/PID/status prints),
with its growth rate over the range (least-squares slope), its memory
cgroup's usage against its limit, how long until the tighter of that limit
and the host's available memory is reached at that rate ("FULL IN"), and
the processes the kernel's OOM killer chose.

With --pid, that process's timeline and its top growing stacks: where its
sampled page faults (newly touched memory) came from, as in
`vigil hot --kind memory --pid`; and its large map calls: each mmap,
munmap and brk call of at least vigild's --profile-map-min-bytes (1 MiB by
default), with its bytes and the stack that made it, however malloc hides
them.
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddSince(app, &since_);
    AddCount(app, "--pid", &pid_, 1, UINT32_MAX, "a process id",
             "only this process, with its timeline, top growing stacks and large map calls");
    AddEnum(app, "--sort", {{"rss", v1::MEMORY_SORT_RSS}, {"growth", v1::MEMORY_SORT_GROWTH}},
            &sort_, "rss or growth", "order rows by resident memory (default) or by growth rate");
    AddTop(app, &top_, "at most N rows (default 20)");
    AddWatchFlags(app, &watch_);
  }

  int Run(const Invocation& inv) override {
    v1::MemoryRequest req;
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since_));
    req.set_pid(pid_);
    req.set_sort(sort_);
    req.set_top(top_);
    const bool with_pid = pid_ != 0;
    return RunQuery(
        inv,
        PerAgentQuery<v1::FleetMemoryResponse>(
            &v1::Vigil::Stub::GetMemory, std::move(req),
            [with_pid](const v1::MemoryResponse& r) { return FormatMemory(r, with_pid); }),
        watch_);
  }

 private:
  absl::Duration since_ = absl::ZeroDuration();
  uint32_t pid_ = 0, top_ = 0;
  v1::MemorySort sort_ = v1::MEMORY_SORT_RSS;
  WatchFlags watch_;
};

}  // namespace

std::unique_ptr<Command> NewMemoryCommand() { return std::make_unique<MemoryCommand>(); }

}  // namespace vigil::cli
