// The spin signal: which threads were on CPU, for how long, and whether they
// made syscalls or blocked, per interval.
//
// Why the profiler's samples plus /proc, and not a sched_switch program
// (measured on this 2-vCPU kvm guest, Linux 6.18, see tests/bench/README.md):
// a tp_btf/sched_switch program doing exact per-thread on-CPU accounting
// (task storage + per-interval hash) ran 217 ns per switch (bpf_stats:
// 175 ms over 806916 switches), about 4% added to a pipe ping-pong that does
// two switches per 11 us round trip, and it pays that on every switch of
// every thread, all day. This design adds no kernel hook at all: the
// profiler already samples every CPU and the syscalls capability already
// counts each thread's syscalls per interval. Only threads with about a
// CPU's worth of samples (at most a few per CPU) are then confirmed exactly
// from /proc/PID/task/TID/schedstat (on-CPU ns) and status
// (voluntary_ctxt_switches): two small reads per candidate per interval.
// The cost is that the first interval of a spin is estimated from samples;
// the next interval's exact numbers confirm or break the streak.
//
// A thread blocked inside a syscall is off CPU, so its share is ~0; a thread
// computing inside one long syscall is sampled with kernel frames and is
// flagged in_kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/spin/spin_config.h"
#include "agent/spin/spin_detector.h"
#include "agent/syscalls/syscalls_aggregate.h"

namespace vigil {

// What /proc says about one thread now. Virtual so tests can fake it.
struct ThreadCounters {
  uint64_t oncpu_ns = 0;            // schedstat field 1 (sum_exec_runtime)
  uint64_t voluntary_switches = 0;  // status voluntary_ctxt_switches
};

class ProcReader {
 public:
  virtual ~ProcReader() = default;
  // False if the thread is gone.
  virtual bool ReadThread(uint32_t pid, uint32_t tid, ThreadCounters* out) = 0;
  // cgroup v2 path of the process ("" if unknown).
  virtual std::string Cgroup(uint32_t pid) = 0;
  // argv joined by spaces, at most 4 KiB ("" if unknown).
  virtual std::string Cmdline(uint32_t pid) = 0;
};

// Reads the real /proc (root: normally "/proc").
std::unique_ptr<ProcReader> NewProcReader(std::string root = "/proc");

// The container id in a cgroup path: a 64-hex-digit component or suffix
// (docker-<id>.scope, cri-containerd-<id>.scope, /docker/<id>), else "".
std::string ContainerIdFromCgroup(const std::string& cgroup);

class SpinSignal {
 public:
  SpinSignal(const SpinConfig& config, uint32_t sample_hz, std::unique_ptr<ProcReader> proc)
      : config_(config), sample_hz_(sample_hz), proc_(std::move(proc)) {}

  // One interval's observations: every thread the detector tracks plus
  // every thread with enough samples to be a candidate. `sys` is null when
  // the syscalls collection failed (every observation is then unknown).
  std::vector<SpinObservation> Build(absl::Time start, absl::Time end, const ProfileInterval& prof,
                                     const SyscallInterval* sys, const SpinDetector& detector);

  ProcReader* proc() { return proc_.get(); }
  // Threads with a baseline reading (bounded by candidates + tracked).
  size_t baselines() const { return baselines_.size(); }

 private:
  struct Baseline {
    ThreadCounters counters;
    std::string cgroup;
  };
  const SpinConfig config_;
  const uint32_t sample_hz_;
  std::unique_ptr<ProcReader> proc_;
  absl::flat_hash_map<uint32_t, Baseline> baselines_;  // by tid
};

}  // namespace vigil
