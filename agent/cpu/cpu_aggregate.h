// Pure logic for the cpu capability: turning passes of cumulative per-thread
// runtimes into CPU used per interval (the record the window store keeps),
// merging intervals for a query, and parsing /proc for the fallback. No BPF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/loss_counts.h"
#include "agent/store/window_store.h"
#include "bpf/cpu.h"

namespace vigil {

struct CpuLossCounts : LossCounts<CpuLossCounts> {
  uint64_t passes_cut = 0;          // passes stopped at max_tasks (the rest unread)
  uint64_t threads_over_cap = 0;    // threads that ran, beyond max_threads
  uint64_t processes_over_cap = 0;  // processes that ran, beyond max_processes
  uint64_t read_failed = 0;         // intervals whose pass failed

  static constexpr LossCause<Self> kCauses[] = {
      VIGIL_LOSS_CAUSE(passes_cut), VIGIL_LOSS_CAUSE(threads_over_cap),
      VIGIL_LOSS_CAUSE(processes_over_cap), VIGIL_LOSS_CAUSE(read_failed)};
};

// One thread at one pass: its cumulative runtime.
struct TaskSample {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint64_t start_ns = 0;         // when it started, in the pass's clock
  uint64_t runtime_ns = 0;       // CPU time since it started
  uint64_t dead_runtime_ns = 0;  // its process's exited threads' CPU time
  bool kthread = false;
  char comm[VIGIL_CPU_COMM_LEN] = {};
};

// Every thread at one instant.
struct TaskPass {
  uint64_t at_ns = 0;  // when the pass began, in the clock of start_ns
  // True when dead_runtime_ns is read (the BPF iterator): a process's CPU is
  // then exact even when threads exit between passes.
  bool dead_runtime_known = false;
  std::vector<TaskSample> tasks;
};

// A thread that ran in an interval, and how much.
struct ThreadCpu {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint64_t cpu_ns = 0;
  char comm[VIGIL_CPU_COMM_LEN] = {};
};

// A process that ran in an interval: all its threads, exited ones included
// where the source knows them.
struct ProcCpu {
  uint32_t tgid = 0;
  uint32_t threads = 0;  // live threads at the end of the interval
  uint64_t cpu_ns = 0;
  bool kthread = false;
  char comm[VIGIL_CPU_COMM_LEN] = {};  // the group leader's name
};

struct CpuInterval {
  std::vector<ThreadCpu> threads;  // busiest first, at most max_threads
  std::vector<ProcCpu> procs;      // busiest first, at most max_processes
  // The host's CPUs over the interval (/proc/stat): busy is all but idle
  // and iowait, total is every state; both summed over CPUs, in ns.
  uint64_t host_busy_ns = 0;
  uint64_t host_total_ns = 0;
  uint32_t host_cpus = 0;
  uint32_t tasks = 0;      // threads in the pass
  uint64_t pass_ns = 0;    // what the pass cost the agent (wall time), ns
  bool from_proc = false;  // read from /proc (the fallback), not the iterator
  CpuLossCounts loss;
  size_t RecordCount() const { return threads.size() + procs.size() + 1; }
};

// Differences between successive passes. Threads are matched by (tid, start
// time), processes by (tgid, leader's start time), so a reused id is a new
// thread. A thread first seen after the previous pass began started since:
// all its runtime is new. On the first pass nothing is known yet.
class CpuDeltas {
 public:
  // Nothing ran before `at_ns` as far as the first pass knows: threads that
  // started since then count whole in it (the agent's start, so a thread
  // born between start and the first pass is not missed).
  void Begin(uint64_t at_ns) {
    have_prev_ = true;
    prev_at_ns_ = at_ns;
  }
  CpuInterval Next(const TaskPass& pass, uint32_t max_threads, uint32_t max_processes);

 private:
  struct Prev {
    uint64_t start_ns = 0;
    uint64_t runtime_ns = 0;
  };
  uint64_t Delta(const absl::flat_hash_map<uint32_t, Prev>& prev, uint32_t id, uint64_t start_ns,
                 uint64_t runtime_ns) const;

  bool have_prev_ = false;
  uint64_t prev_at_ns_ = 0;
  // Only what the last pass saw: bounded by max_tasks.
  absl::flat_hash_map<uint32_t, Prev> threads_;  // by tid
  absl::flat_hash_map<uint32_t, Prev> procs_;    // by tgid: total runtime
};

// Intervals merged for a query: CPU per process and per thread.
struct CpuUsage {
  struct Proc {
    uint64_t cpu_ns = 0;
    uint32_t threads = 0;
    bool kthread = false;
    std::string comm;
  };
  struct Thread {
    uint32_t tgid = 0;
    uint64_t cpu_ns = 0;
    std::string comm;
  };
  Coverage covered;
  absl::flat_hash_map<uint32_t, Proc> procs;      // by tgid
  absl::flat_hash_map<uint32_t, Thread> threads;  // by tid
  uint64_t host_busy_ns = 0, host_total_ns = 0;
  uint32_t host_cpus = 0;
  bool from_proc = false;
  uint64_t pass_ns_total = 0;  // summed over the intervals
  uint64_t tasks_last = 0;
  CpuLossCounts loss;

  void Add(const CpuInterval& iv);
};

// /proc/PID/task/TID/stat: the name between the first '(' and the last ')'
// (a name may hold both), start time and utime + stime in clock ticks.
struct ProcTaskStat {
  std::string comm;
  uint64_t start_ticks = 0;
  uint64_t cpu_ticks = 0;  // utime + stime
  bool kthread = false;    // flags & PF_KTHREAD
};
absl::StatusOr<ProcTaskStat> ParseTaskStat(absl::string_view text);

// The first line of /proc/stat: busy (all but idle and iowait) and total,
// in clock ticks summed over CPUs.
absl::Status ParseProcStatCpu(absl::string_view text, uint64_t* busy_ticks, uint64_t* total_ticks);

}  // namespace vigil
