#include "agent/syscalls/syscalls_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "bpf/syscalls.skel.h"

namespace vigil {

absl::StatusOr<std::unique_ptr<SyscallsCollector>> SyscallsCollector::Create(
    const SyscallsConfig& config) {
  if (config.max_entries == 0 || config.batch_size == 0) {
    return absl::InvalidArgumentError("syscalls: max_entries and batch_size must be > 0");
  }
  const uint32_t every = config.latency_sample_every;
  if (every == 0 || every > 1024 || (every & (every - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("syscalls: latency_sample_every ", every, " is not a power of two in 1-1024"));
  }
  // This load's libbpf warnings, for its error messages.
  LibbpfLogCapture libbpf_log;
  SkelPtr<syscalls_bpf> skel(syscalls_bpf::open());
  if (!skel) return ErrnoStatus(errno, "opening syscalls.bpf.o");

  // Configure, then load. The outer map's inner template may keep its size:
  // the kernel does not compare max_entries for hash inner maps.
  for (bpf_map* m : {skel->maps.stats_a, skel->maps.stats_b}) {
    int err = bpf_map__set_max_entries(m, config.max_entries);
    if (err) return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
  }
  skel->rodata->measure_latency = config.measure_latency;
  skel->rodata->latency_sample_mask = every - 1;
  if (!config.measure_latency) {
    bpf_program__set_autoload(skel->progs.vigil_sys_enter, false);
  }
  if (int err = syscalls_bpf::load(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "loading syscalls.bpf.o"));
  }
  if (int err = syscalls_bpf::attach(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "attaching tp_btf/sys_enter,sys_exit"));
  }
  return std::unique_ptr<SyscallsCollector>(new SyscallsCollector(config, std::move(skel)));
}

SyscallsCollector::SyscallsCollector(const SyscallsConfig& config, SkelPtr<syscalls_bpf> skel)
    : config_(config),
      skel_(std::move(skel)),
      buffers_(skel_->maps.active_stats, skel_->maps.stats_a, skel_->maps.stats_b),
      keys_(config.batch_size),
      values_(config.batch_size) {}

SyscallsCollector::~SyscallsCollector() = default;

absl::StatusOr<SyscallInterval> SyscallsCollector::Collect() {
  absl::StatusOr<int> retired = buffers_.Swap("syscalls: swapping stats buffers");
  if (!retired.ok()) return retired.status();
  SyscallInterval out;
  const uint64_t every = config_.latency_sample_every;
  in_flight_.clear();
  const absl::Status drained = DrainHash(
      *retired, config_.max_entries, &keys_, &values_, "syscalls: draining stats buffer",
      &out.loss.drain_failed, [this, &out, every](const syscall_key& k, syscall_stats& v) {
        if (v.timing != 0) in_flight_.emplace_back(k, v);
        if (v.calls == 0) return;  // only a carried mark: no call ended here
        // Each call was timed with probability 1/every, so the sampled
        // sums times every are unbiased estimates of the whole's.
        if (every > 1) {
          v.total_ns *= every;
          for (auto& h : v.hist) h *= every;
        }
        out.Append(k, v);
      });
  LogDrainFailure(drained, out.loss.drain_failed);
  out.loss.latency_lost = CarryTimingMarks();
  if (absl::Status s = counters_.ReadInto(bpf_map__fd(skel_->maps.counters), &out.loss); !s.ok()) {
    return s;
  }
  return out;
}

uint64_t SyscallsCollector::CarryTimingMarks() {
  // A timed call that has not returned left its mark in the retired buffer;
  // its exit will look in the active one. Without the mark there, every
  // call longer than an interval would go untimed: the slow calls, the ones
  // latency is read for. BPF_NOEXIST: if the exit already created the entry,
  // the call ended during the hand-over and its timing is lost (counted).
  const int active = buffers_.active_fd();
  uint64_t lost = 0;
  for (auto& [key, value] : in_flight_) {
    // A thread that died inside a call (exit_group) never clears its mark;
    // stop carrying it once the thread is gone.
    if (access(absl::StrCat("/proc/", key.tgid, "/task/", key.tid).c_str(), F_OK) != 0) continue;
    syscall_stats mark{};
    memcpy(mark.comm, value.comm, sizeof(mark.comm));
    memcpy(mark.pcomm, value.pcomm, sizeof(mark.pcomm));
    mark.timing = value.timing;
    if (bpf_map_update_elem(active, &key, &mark, BPF_NOEXIST) != 0) ++lost;
  }
  return lost;
}

int SyscallsCollector::exit_hooks_fd() const { return bpf_map__fd(skel_->maps.exit_hooks); }

std::vector<uint32_t> SyscallsCollector::ProgramIds() const {
  // sys_enter is not loaded with latency off.
  return LoadedProgramIds({skel_->progs.vigil_sys_enter, skel_->progs.vigil_sys_exit});
}

}  // namespace vigil
