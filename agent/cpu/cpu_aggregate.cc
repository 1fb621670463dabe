#include "agent/cpu/cpu_aggregate.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace vigil {
namespace {

std::string Comm(const char* c) { return std::string(c, strnlen(c, VIGIL_CPU_COMM_LEN)); }

// Keeps the `cap` busiest, counting the rest.
template <typename T>
void KeepBusiest(std::vector<T>* v, uint32_t cap, uint64_t* over) {
  std::sort(v->begin(), v->end(), [](const T& a, const T& b) {
    if (a.cpu_ns != b.cpu_ns) return a.cpu_ns > b.cpu_ns;
    return a.tgid < b.tgid;
  });
  if (v->size() > cap) {
    *over += v->size() - cap;
    v->resize(cap);
  }
}

}  // namespace

uint64_t CpuDeltas::Delta(const absl::flat_hash_map<uint32_t, Prev>& prev, uint32_t id,
                          uint64_t start_ns, uint64_t runtime_ns) const {
  if (auto it = prev.find(id); it != prev.end() && it->second.start_ns == start_ns) {
    // Runtimes only grow; a smaller one is a racy read (signal's sum is
    // updated under a lock the iterator does not take): nothing this time.
    return runtime_ns > it->second.runtime_ns ? runtime_ns - it->second.runtime_ns : 0;
  }
  // Started since the previous pass began: all of its runtime is new. One
  // that did not (unseen because a pass was cut) has no baseline yet.
  return have_prev_ && start_ns >= prev_at_ns_ ? runtime_ns : 0;
}

CpuInterval CpuDeltas::Next(const TaskPass& pass, uint32_t max_threads, uint32_t max_processes) {
  CpuInterval iv;
  iv.tasks = static_cast<uint32_t>(pass.tasks.size());
  struct ProcAcc {
    uint64_t start_ns = UINT64_MAX;
    bool leader_seen = false;
    uint64_t live_ns = 0, dead_ns = 0, thread_delta_ns = 0;
    uint32_t threads = 0;
    bool kthread = false;
    const char* comm = nullptr;
  };
  absl::flat_hash_map<uint32_t, ProcAcc> procs;
  absl::flat_hash_map<uint32_t, Prev> threads_now;
  threads_now.reserve(pass.tasks.size());
  for (const TaskSample& t : pass.tasks) {
    const uint64_t d = Delta(threads_, t.tid, t.start_ns, t.runtime_ns);
    threads_now[t.tid] = Prev{t.start_ns, t.runtime_ns};
    ProcAcc& p = procs[t.tgid];
    p.live_ns += t.runtime_ns;
    p.dead_ns = std::max(p.dead_ns, t.dead_runtime_ns);  // shared by the group
    p.thread_delta_ns += d;
    ++p.threads;
    p.kthread = t.kthread;
    if (t.tid == t.tgid) {
      p.leader_seen = true;
      p.start_ns = t.start_ns;
      p.comm = t.comm;
    } else if (!p.leader_seen) {
      p.start_ns = std::min(p.start_ns, t.start_ns);
      if (p.comm == nullptr) p.comm = t.comm;
    }
    if (d == 0) continue;
    ThreadCpu& c = iv.threads.emplace_back();
    c.tgid = t.tgid;
    c.tid = t.tid;
    c.cpu_ns = d;
    memcpy(c.comm, t.comm, sizeof(c.comm));
  }
  absl::flat_hash_map<uint32_t, Prev> procs_now;
  procs_now.reserve(procs.size());
  for (const auto& [tgid, p] : procs) {
    const uint64_t total = p.live_ns + p.dead_ns;
    procs_now[tgid] = Prev{p.start_ns, total};
    // Without the exited threads' sum, a thread exiting would look like
    // the process giving CPU back: sum the live threads' deltas instead.
    const uint64_t d =
        pass.dead_runtime_known ? Delta(procs_, tgid, p.start_ns, total) : p.thread_delta_ns;
    if (d == 0) continue;
    ProcCpu& c = iv.procs.emplace_back();
    c.tgid = tgid;
    c.threads = p.threads;
    c.cpu_ns = d;
    c.kthread = p.kthread;
    if (p.comm != nullptr) memcpy(c.comm, p.comm, sizeof(c.comm));
  }
  threads_ = std::move(threads_now);
  procs_ = std::move(procs_now);
  have_prev_ = true;
  prev_at_ns_ = pass.at_ns;
  KeepBusiest(&iv.threads, max_threads, &iv.loss.threads_over_cap);
  KeepBusiest(&iv.procs, max_processes, &iv.loss.processes_over_cap);
  return iv;
}

void CpuUsage::Add(const CpuInterval& iv) {
  for (const ProcCpu& p : iv.procs) {
    Proc& o = procs[p.tgid];
    o.cpu_ns += p.cpu_ns;
    o.threads = p.threads;
    o.kthread = p.kthread;
    o.comm = Comm(p.comm);
  }
  for (const ThreadCpu& t : iv.threads) {
    Thread& o = threads[t.tid];
    o.tgid = t.tgid;
    o.cpu_ns += t.cpu_ns;
    o.comm = Comm(t.comm);
  }
  host_busy_ns += iv.host_busy_ns;
  host_total_ns += iv.host_total_ns;
  host_cpus = iv.host_cpus;
  from_proc = iv.from_proc;
  pass_ns_total += iv.pass_ns;
  tasks_last = iv.tasks;
  loss += iv.loss;
}

absl::StatusOr<ProcTaskStat> ParseTaskStat(absl::string_view text) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) {
    return absl::InvalidArgumentError("stat: no (comm)");
  }
  ProcTaskStat s;
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  // After the name: field 3 (state) onwards; utime is field 14, stime 15,
  // flags 9, starttime 22 (proc(5)).
  std::vector<absl::string_view> f =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipWhitespace());
  if (f.size() < 20) return absl::InvalidArgumentError("stat: too few fields");
  uint64_t flags = 0, utime = 0, stime = 0;
  if (!absl::SimpleAtoi(f[9 - 3], &flags) || !absl::SimpleAtoi(f[14 - 3], &utime) ||
      !absl::SimpleAtoi(f[15 - 3], &stime) || !absl::SimpleAtoi(f[22 - 3], &s.start_ticks)) {
    return absl::InvalidArgumentError("stat: bad number");
  }
  s.cpu_ticks = utime + stime;
  s.kthread = (flags & VIGIL_PF_KTHREAD) != 0;
  return s;
}

absl::Status ParseProcStatCpu(absl::string_view text, uint64_t* busy_ticks, uint64_t* total_ticks) {
  const absl::string_view line = text.substr(0, text.find('\n'));
  std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (f.size() < 5 || f[0] != "cpu") return absl::InvalidArgumentError("/proc/stat: no cpu line");
  uint64_t total = 0, idle = 0;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest
  // time is already inside user and nice.
  for (size_t i = 1; i < f.size() && i <= 8; ++i) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(f[i], &v)) return absl::InvalidArgumentError("/proc/stat: bad number");
    total += v;
    if (i == 4 || i == 5) idle += v;
  }
  *total_ticks = total;
  *busy_ticks = total - idle;
  return absl::OkStatus();
}

}  // namespace vigil
