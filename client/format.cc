#include "client/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/profile_export.h"
#include "common/state_names.h"

namespace vigil::cli {

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  opts.add_whitespace = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(m, &out, opts);
  if (!st.ok()) return absl::StrCat("{\"error\": \"json: ", st.ToString(), "\"}\n");
  return out;
}

std::string HumanBytes(double b) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (std::fabs(b) < 0.5) return "0 B";
  double v = std::fabs(b);
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof(kUnits) / sizeof(kUnits[0])) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%s%.*f %s", b < 0 ? "-" : "", u == 0 ? 0 : 1, v, kUnits[u]);
}

std::string HumanNs(uint64_t ns) {
  if (ns >= 1000000000ull) return absl::StrFormat("%.3f s", ns / 1e9);
  if (ns >= 1000000ull) return absl::StrFormat("%.3f ms", ns / 1e6);
  if (ns >= 1000ull) return absl::StrFormat("%.1f us", ns / 1e3);
  return absl::StrFormat("%d ns", ns);
}

namespace {

std::string FormatRange(const v1::CoveredRange& c) {
  if (c.intervals() == 0) return "no data in range yet";
  const absl::Time a = absl::FromUnixNanos(c.start_unix_ns());
  const absl::Time b = absl::FromUnixNanos(c.end_unix_ns());
  return absl::StrFormat("%s .. %s (%s, %d intervals)",
                         absl::FormatTime("%Y-%m-%d %H:%M:%S", a, absl::LocalTimeZone()),
                         absl::FormatTime("%H:%M:%S", b, absl::LocalTimeZone()),
                         absl::FormatDuration(absl::Seconds(absl::ToInt64Seconds(b - a))),
                         c.intervals());
}

}  // namespace

namespace {

std::string LossWarning(const v1::SyscallLoss& l) {
  if (l.map_full() + l.storage_fail() + l.store_dropped() + l.drain_failed() == 0) return "";
  return absl::StrFormat(
      "warning: not recorded: %d exits (stats map full), %d entries (task storage), "
      "%d records (store cap), %d entries (drain failed)\n",
      l.map_full(), l.storage_fail(), l.store_dropped(), l.drain_failed());
}

std::string FormatBlock(const v1::ThreadSyscalls& t, v1::SyscallGroupBy by,
                        const std::string& host) {
  std::string out = host.empty() ? "\n" : absl::StrFormat("\nHOST %s  ", host);
  switch (by) {
    case v1::SYSCALL_GROUP_BY_PROCESS:
      absl::StrAppend(&out, absl::StrFormat("PID %d  %s", t.pid(), t.comm()));
      break;
    case v1::SYSCALL_GROUP_BY_SYSCALL:
      absl::StrAppend(&out, "all threads");
      break;
    default:
      absl::StrAppend(&out, absl::StrFormat("PID %d  TID %d  %s", t.pid(), t.tid(), t.comm()));
      if (!t.process_comm().empty() && t.process_comm() != t.comm()) {
        absl::StrAppend(&out, absl::StrFormat(" (process %s)", t.process_comm()));
      }
      break;
  }
  absl::StrAppend(&out, absl::StrFormat("  calls %d  errors %d  time %s\n", t.total_calls(),
                                        t.total_errors(), HumanNs(t.total_ns())));
  absl::StrAppend(
      &out,
      "% time     seconds  usecs/call   max usecs     calls    errors syscall\n"
      "------ ----------- ----------- ----------- --------- --------- ----------------\n");
  for (const v1::SyscallStat& s : t.syscalls()) {
    const double pct = t.total_ns() ? 100.0 * s.total_ns() / t.total_ns() : 0.0;
    const uint64_t avg_us = s.calls() ? s.total_ns() / s.calls() / 1000 : 0;
    absl::StrAppend(&out, absl::StrFormat("%6.2f %11.6f %11d %11d %9d %9s %s\n", pct,
                                          s.total_ns() / 1e9, avg_us, s.max_ns() / 1000, s.calls(),
                                          s.errors() ? absl::StrCat(s.errors()) : "", s.name()));
  }
  return out;
}

uint64_t SortKey(const v1::ThreadSyscalls& t, v1::SyscallSort sort) {
  switch (sort) {
    case v1::SYSCALL_SORT_CALLS:
      return t.total_calls();
    case v1::SYSCALL_SORT_ERRORS:
      return t.total_errors();
    default:
      return t.total_ns();
  }
}

}  // namespace

std::string FormatSyscalls(const v1::SyscallsResponse& r, v1::SyscallGroupBy by) {
  std::string out =
      absl::StrCat("syscalls: ", FormatRange(r.covered()), "\n", LossWarning(r.loss()));
  if (!r.latency_measured()) {
    absl::StrAppend(&out, "latency not measured (vigild --syscalls-latency off): counts only\n");
  } else if (r.latency_sample_every() > 1) {
    absl::StrAppend(&out, "latency timed on 1 in ", r.latency_sample_every(),
                    " calls (vigild --syscalls-latency-sample): time and histograms are "
                    "estimates, max is the largest sampled; counts are exact\n");
  }
  if (r.threads().empty()) {
    absl::StrAppend(&out, "no syscalls matched\n");
    return out;
  }
  for (const v1::ThreadSyscalls& t : r.threads()) absl::StrAppend(&out, FormatBlock(t, by, ""));
  if (r.groups_omitted() > 0) {
    absl::StrAppend(&out,
                    absl::StrFormat("\n(%d more %s not shown; raise --top)\n", r.groups_omitted(),
                                    by == v1::SYSCALL_GROUP_BY_SYSCALL ? "syscalls" : "groups"));
  }
  return out;
}

std::string FormatFleetSyscalls(const v1::FleetSyscallsResponse& r, v1::SyscallGroupBy by,
                                v1::SyscallSort sort, uint32_t top) {
  std::string out;
  std::vector<std::pair<const std::string*, const v1::ThreadSyscalls*>> blocks;
  int answered = 0;
  for (const auto& a : r.agents()) {
    if (!a.error().empty()) continue;
    ++answered;
    const v1::SyscallsResponse& resp = a.response();
    absl::StrAppend(
        &out,
        absl::StrFormat("%s (%s): %s\n", resp.hostname(), a.agent(), FormatRange(resp.covered())),
        LossWarning(resp.loss()));
    for (const auto& t : resp.threads()) blocks.emplace_back(&resp.hostname(), &t);
  }
  absl::StrAppend(&out, absl::StrFormat("%d of %d agents answered\n", answered, r.agents_size()));
  std::stable_sort(blocks.begin(), blocks.end(), [sort](const auto& a, const auto& b) {
    return SortKey(*a.second, sort) > SortKey(*b.second, sort);
  });
  const size_t shown = top == 0 ? blocks.size() : std::min<size_t>(blocks.size(), top);
  for (size_t i = 0; i < shown; ++i) {
    absl::StrAppend(&out, FormatBlock(*blocks[i].second, by, *blocks[i].first));
  }
  if (blocks.size() > shown) {
    absl::StrAppend(&out, absl::StrFormat("\n(%d more groups not shown; raise --top)\n",
                                          blocks.size() - shown));
  }
  if (blocks.empty()) absl::StrAppend(&out, "no syscalls matched\n");
  return out;
}

std::string FormatStatus(const v1::StatusResponse& s) {
  std::string out = absl::StrFormat("vigild %s on %s\n", s.version(), s.hostname());
  absl::StrAppend(
      &out, absl::StrFormat(
                "  up since %s, interval %s, window %s, %d intervals retained\n",
                absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixNanos(s.start_unix_ns()),
                                 absl::LocalTimeZone()),
                absl::FormatDuration(absl::Nanoseconds(s.interval_ns())),
                absl::FormatDuration(absl::Nanoseconds(s.window_ns())), s.intervals_retained()));
  absl::StrAppend(&out,
                  absl::StrFormat("  rss %.1f MiB (heap %.1f MiB in use, %.1f MiB free), "
                                  "cpu %s\n",
                                  s.rss_bytes() / 1048576.0, s.heap_in_use_bytes() / 1048576.0,
                                  s.heap_free_bytes() / 1048576.0, HumanNs(s.cpu_ns())));
  for (const auto& c : s.capabilities()) {
    absl::StrAppend(&out,
                    absl::StrFormat("  %-10s %s%s\n", c.name(), StateName(c.state()),
                                    c.reason().empty() ? "" : absl::StrCat(": ", c.reason())));
  }
  const auto& l = s.syscall_loss();
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "  syscalls not recorded: map_full %d, storage_fail %d, no_enter %d, nr_out_of_range %d, "
          "store_dropped %d, drain_failed %d\n",
          l.map_full(), l.storage_fail(), l.no_enter(), l.nr_out_of_range(), l.store_dropped(),
          l.drain_failed()));
  const auto& u = s.udpdrop_loss();
  absl::StrAppend(
      &out,
      absl::StrFormat("  udp drops not recorded: map_full %d, bad_header %d, store_dropped %d, "
                      "drain_failed %d; owners not cached %d\n",
                      u.map_full(), u.bad_header(), u.store_dropped(), u.drain_failed(),
                      u.owner_cache_full()));
  if (s.has_memory_loss()) {
    const v1::MemoryLoss& m = s.memory_loss();
    absl::StrAppend(
        &out, absl::StrFormat("  memory not recorded: processes_over_cap %d, "
                              "cgroups_over_cap %d, oom_ringbuf_full %d, "
                              "read_failed %d, store_dropped %d\n",
                              m.processes_over_cap(), m.cgroups_over_cap(), m.oom_ringbuf_full(),
                              m.read_failed(), m.store_dropped()));
  }
  if (s.has_cpu()) {
    const v1::CpuStatus& c = s.cpu();
    const v1::CpuLoss& l = c.loss();
    absl::StrAppend(
        &out, absl::StrFormat("  cpu: %s, %d tasks per pass in %.2f ms (%.0f ns per task); not "
                              "recorded: passes_cut %d, threads_over_cap %d, processes_over_cap "
                              "%d, read_failed %d, store_dropped %d\n",
                              c.source(), c.tasks(), static_cast<double>(c.pass_ns()) / 1e6,
                              c.ns_per_task(), l.passes_cut(), l.threads_over_cap(),
                              l.processes_over_cap(), l.read_failed(), l.store_dropped()));
  }
  if (s.has_ondemand()) {
    const v1::OnDemandStatus& o = s.ondemand();
    absl::StrAppend(
        &out, absl::StrFormat("  on demand: %d of %d sessions running (each up to %s); trace: %d "
                              "sessions, %d events sent, %d lost; probe: %d sessions, %d calls\n",
                              o.running(), o.max_sessions(),
                              absl::FormatDuration(absl::Nanoseconds(o.max_duration_ns())),
                              o.trace_sessions(), o.trace_events(), o.trace_lost(),
                              o.probe_sessions(), o.probe_calls()));
  }
  if (s.has_profiler()) {
    const v1::ProfilerStatus& p = s.profiler();
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "  profiler: %s at %d Hz on %d CPUs, %d samples (%d idle); not recorded: map_full %d, "
            "kernel stack collisions %d, stack_map_full %d, store_dropped %d, drain_failed %d\n",
            p.event(), p.sample_hz(), p.cpus(), p.samples(), p.loss().idle_samples(),
            p.loss().map_full(), p.loss().kernel_stack_collisions(), p.loss().stack_map_full(),
            p.loss().store_dropped(), p.loss().drain_failed()));
    if (p.fault_period() > 0) {
      absl::StrAppend(
          &out,
          absl::StrFormat("  page faults: 1 sample per %d faults, %d samples (%d without user "
                          "memory, not kept); %d records kept, fault_store_dropped %d\n",
                          p.fault_period(), p.fault_samples(), p.fault_samples_without_user(),
                          p.fault_records_retained(), p.fault_store_dropped()));
    } else {
      absl::StrAppend(&out, "  page faults: not sampled\n");
    }
    if (p.map_min_bytes() > 0) {
      absl::StrAppend(&out, absl::StrFormat("  large map calls: each mmap/munmap/brk of %s or "
                                            "more (%s), %d seen; brk moves not recorded (old "
                                            "break unknown) %d\n",
                                            HumanBytes(p.map_min_bytes()), p.map_hook(),
                                            p.map_calls(), p.brk_unknown()));
    } else {
      absl::StrAppend(&out, "  large map calls: not recorded\n");
    }
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "  symbols: %d processes cached; evicted %d exited, %d exec, %d capacity; %d module "
            "tables dropped; %d unnamed frames; %d addresses memoized, %d memo resets\n",
            p.symbol_cache_processes(), p.symbol_cache_evicted_exit(),
            p.symbol_cache_evicted_exec(), p.symbol_cache_evicted_capacity(),
            p.symbol_module_evictions(), p.unnamed_frames(), p.symbol_memo_addrs(),
            p.symbol_memo_resets()));
    absl::StrAppend(&out, FormatUnwinder(p.unwinder()));
    const v1::DebuginfodStatus& d = p.debuginfod();
    if (d.enabled()) {
      absl::StrAppend(
          &out, absl::StrFormat("  debuginfod: %d fetched, %d failed, %d negative-cache hits, %d "
                                "queue drops; cache %d bytes, %d evicted\n",
                                d.fetched(), d.failed(), d.negative_cache_hits(), d.queue_drops(),
                                d.cache_bytes(), d.cache_evictions()));
    } else {
      absl::StrAppend(&out, "  debuginfod: off\n");
    }
  }
  if (!s.last_error().empty()) absl::StrAppend(&out, "  last error: ", s.last_error(), "\n");
  return out;
}

std::string FormatUnwinder(const v1::UnwinderStatus& u) {
  uint64_t ended = 0, complete = 0;
  std::string ends;
  for (const v1::StackEnd& e : u.stack_ends()) {
    ended += e.samples();
    if (e.reason() == "root" || e.reason() == "no_user_stack") {
      complete += e.samples();
    } else if (e.samples() > 0) {
      absl::StrAppend(&ends, ends.empty() ? "" : ", ", e.reason(), " ", e.samples());
    }
  }
  std::string out = absl::StrFormat(
      "  unwinder: %s; %d processes, %d files with CFI (%d rows, %.1f of %.1f MiB), %d without "
      "CFI; %d compiled in %d ms (%d failed); full: rows %d, files %d, processes %d; "
      "mappings dropped %d\n",
      u.mode(), u.processes(), u.files(), u.rows(), u.rows() * 8.0 / (1 << 20),
      u.row_capacity() * 8.0 / (1 << 20), u.files_without_cfi(), u.compiled(), u.compile_ms(),
      u.compile_failed(), u.rows_full(), u.files_full(), u.processes_full(), u.mappings_dropped());
  absl::StrAppend(
      &out, absl::StrFormat(
                "  user stacks: %.1f%% complete of %d samples; frames %d (%d CFI, %d frame "
                "pointers); truncated: %s\n",
                ended ? 100.0 * static_cast<double>(complete) / static_cast<double>(ended) : 100.0,
                ended, u.frames(), u.cfi_frames(), u.fp_frames(), ends.empty() ? "none" : ends));
  return out;
}

std::string FormatDrops(const v1::DropsResponse& r, bool explain) {
  std::string out = absl::StrCat("udp drops: ", FormatRange(r.covered()), "\n");
  const auto& l = r.loss();
  if (l.map_full() + l.bad_header() + l.store_dropped() > 0) {
    absl::StrAppend(
        &out, absl::StrFormat(
                  "warning: not recorded: %d drops (stats map full), %d drops (unreadable header), "
                  "%d rows (store cap)\n",
                  l.map_full(), l.bad_header(), l.store_dropped()));
  }
  if (!r.reasons_known()) {
    absl::StrAppend(&out, "this kernel reports no drop reasons: all shown as unknown\n");
  }
  if (r.drops().empty()) {
    absl::StrAppend(&out, "no UDP drops matched\n");
    return out;
  }
  absl::StrAppend(&out,
                  absl::StrFormat("%-16s %-28s %-22s %-11s %10s %10s %8s %8s\n", "REASON", "LOCAL",
                                  "PROCESS", "NETNS", "COUNT", "RATE/s", "RCVBUF", "QUEUED"));
  for (const v1::UdpDrop& d : r.drops()) {
    const std::string local = d.family() == "ipv6"
                                  ? absl::StrCat("[", d.local_addr(), "]:", d.local_port())
                                  : absl::StrCat(d.local_addr(), ":", d.local_port());
    std::string proc = "-";
    if (d.pid() != 0) {
      proc = absl::StrCat(d.pid(), "/", d.comm());
      if (d.owners_size() > 1) absl::StrAppend(&proc, " +", d.owners_size() - 1);
    } else if (d.socket_inode() != 0) {
      proc = "(socket closed)";
    }
    absl::StrAppend(
        &out, absl::StrFormat("%-16s %-28s %-22s %-11d %10d %10.1f %8s %8s\n", d.reason(), local,
                              proc, d.netns(), d.count(), d.rate_per_s(),
                              d.socket_inode() ? absl::StrCat(d.rcvbuf()) : "-",
                              d.socket_inode() ? absl::StrCat(d.queued()) : "-"));
    if (explain) absl::StrAppend(&out, "  -> ", d.explain(), "\n");
  }
  if (r.rows_omitted() > 0) {
    absl::StrAppend(&out,
                    absl::StrFormat("(%d more rows not shown; raise --top)\n", r.rows_omitted()));
  }
  return out;
}

std::string FormatGrowingStacks(const v1::GrowingStacks& g, bool leaf_only,
                                const std::string& indent) {
  if (!g.unavailable().empty()) {
    return absl::StrCat(indent, "growing stacks: none, ", g.unavailable(), "\n");
  }
  if (g.stacks().empty()) {
    return absl::StrCat(indent, "growing stacks: no page-fault sample of the process in the range",
                        "\n");
  }
  std::string out = absl::StrFormat(
      "%sgrowing stacks: %s newly touched (%u page-fault samples of 1 per %u faults)\n", indent,
      HumanBytes(g.fault_bytes()), g.samples(), g.fault_period());
  if (!leaf_only) {
    absl::StrAppendFormat(&out, "%s%10s %7s  %s\n", indent, "BYTES", "SHARE",
                          "STACK (innermost first)  MODULE");
  }
  for (const v1::GrowingStack& s : g.stacks()) {
    const std::string head =
        absl::StrFormat("%s%10s %6.1f%%  ", indent, HumanBytes(s.fault_bytes()), 100 * s.share());
    if (s.frames().empty()) {
      absl::StrAppend(&out, head, "[no user stack]\n");
      continue;
    }
    for (int i = 0; i < s.frames_size(); ++i) {
      const v1::ProfileFrame& f = s.frames(i);
      absl::StrAppend(&out, i == 0 ? head : std::string(head.size(), ' '), FrameName(f), "  ",
                      f.module(), "\n");
      if (leaf_only) break;
    }
    if (!leaf_only && (s.frames_cut() || s.truncated())) {
      absl::StrAppend(&out, std::string(head.size(), ' '),
                      s.frames_cut() ? "... (callers cut)" : "... (stack ends early)", "\n");
    }
  }
  if (g.stacks_omitted() > 0) {
    absl::StrAppend(&out, indent, "(", g.stacks_omitted(), " more stacks)\n");
  }
  return out;
}

std::string FormatLargeMapCalls(const v1::LargeMapCalls& m, bool compact,
                                const std::string& indent) {
  if (!m.unavailable().empty()) {
    return absl::StrCat(indent, "large map calls: none, ", m.unavailable(), "\n");
  }
  const std::string min = HumanBytes(m.min_bytes());
  if (m.stacks().empty()) {
    return absl::StrCat(indent, "large map calls: no mmap/munmap/brk call of ", min,
                        " or more in the range\n");
  }
  std::string out =
      absl::StrFormat("%slarge map calls (each >= %s): %s mapped, %s unmapped\n", indent, min,
                      HumanBytes(m.mapped_bytes()), HumanBytes(m.unmapped_bytes()));
  if (!compact) {
    absl::StrAppendFormat(&out, "%s%10s %7s %-11s %s\n", indent, "BYTES", "CALLS", "CALL",
                          "STACK (innermost first)  MODULE");
  }
  for (const v1::MapCallStack& s : m.stacks()) {
    std::string call = v1::MapCall_Name(s.call());
    if (absl::StartsWith(call, "MAP_CALL_")) call = absl::AsciiStrToLower(call.substr(9));
    const std::string head = absl::StrFormat("%s%10s %7u %-11s ", indent, HumanBytes(s.bytes()),
                                             s.calls(), call.empty() ? "?" : call);
    if (s.frames().empty()) {
      absl::StrAppend(&out, head, "[no user stack]\n");
      continue;
    }
    if (compact) {
      // The leaf is the syscall's wrapper, and its callers in the same
      // module (libc's malloc) say little: skip to the first three frames
      // outside it, the code that asked for the memory.
      std::vector<std::string> names = {FrameName(s.frames(0))};
      int i = 1;
      while (i < s.frames_size() && s.frames(i).module() == s.frames(0).module()) ++i;
      if (i > 1) names.push_back("...");
      for (int shown = 0; i < s.frames_size() && shown < 3; ++i, ++shown) {
        names.push_back(FrameName(s.frames(i)));
      }
      absl::StrAppend(&out, head, absl::StrJoin(names, " < "), i < s.frames_size() ? " < ..." : "",
                      "\n");
      continue;
    }
    for (int i = 0; i < s.frames_size(); ++i) {
      const v1::ProfileFrame& f = s.frames(i);
      absl::StrAppend(&out, i == 0 ? head : std::string(head.size(), ' '), FrameName(f), "  ",
                      f.module(), "\n");
    }
    if (s.frames_cut() || s.truncated()) {
      absl::StrAppend(&out, std::string(head.size(), ' '),
                      s.frames_cut() ? "... (callers cut)" : "... (stack ends early)", "\n");
    }
  }
  if (m.stacks_omitted() > 0) {
    absl::StrAppend(&out, indent, "(", m.stacks_omitted(), " more stacks)\n");
  }
  return out;
}

}  // namespace vigil::cli
