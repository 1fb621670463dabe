#include "agent/syscalls/syscalls_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "bpf/syscalls.skel.h"

namespace vigil {

absl::StatusOr<std::unique_ptr<SyscallsCollector>> SyscallsCollector::Create(
    const SyscallsConfig& config) {
  if (config.max_entries == 0 || config.batch_size == 0) {
    return absl::InvalidArgumentError("syscalls: max_entries and batch_size must be > 0");
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
      keys_(config.batch_size),
      values_(config.batch_size) {}

SyscallsCollector::~SyscallsCollector() = default;

absl::StatusOr<SyscallInterval> SyscallsCollector::Collect() {
  bpf_map* const bufs[2] = {skel_->maps.stats_a, skel_->maps.stats_b};
  const int next = 1 - active_;
  const uint32_t slot = 0;
  const int next_fd = bpf_map__fd(bufs[next]);
  // Updating a map-in-map slot returns only after an RCU grace period, so no
  // program is still writing the retired buffer when we read it.
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.active_stats), &slot, &next_fd, BPF_ANY)) {
    return ErrnoStatus(errno, "syscalls: swapping stats buffers");
  }
  const int retired = active_;
  active_ = next;

  SyscallInterval out;
  if (absl::Status s = Drain(bpf_map__fd(bufs[retired]), &out); !s.ok()) return s;
  absl::StatusOr<SyscallLossCounts> now = ReadCounters();
  if (!now.ok()) return now.status();
  out.loss.map_full = now->map_full - last_counters_.map_full;
  out.loss.no_enter = now->no_enter - last_counters_.no_enter;
  out.loss.storage_fail = now->storage_fail - last_counters_.storage_fail;
  out.loss.nr_out_of_range = now->nr_out_of_range - last_counters_.nr_out_of_range;
  last_counters_ = *now;
  return out;
}

std::vector<uint32_t> SyscallsCollector::ProgramIds() const {
  std::vector<uint32_t> ids;
  for (const bpf_program* p : {skel_->progs.vigil_sys_enter, skel_->progs.vigil_sys_exit}) {
    const int fd = bpf_program__fd(p);
    if (fd < 0) continue;  // not loaded (latency off)
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) ids.push_back(info.id);
  }
  return ids;
}

absl::Status SyscallsCollector::Drain(int fd, SyscallInterval* out) {
  // The retired buffer has no writers, so a plain batch walk then delete
  // would do; lookup_and_delete does both in one pass.
  syscall_key out_batch{};
  bool first = true;
  for (;;) {
    uint32_t count = config_.batch_size;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &out_batch, &out_batch,
                                              keys_.data(), values_.data(), &count, &opts);
    int saved = errno;
    first = false;
    for (uint32_t i = 0; i < count; ++i) out->Append(keys_[i], values_[i]);
    if (err) {
      if (saved == ENOENT) return absl::OkStatus();  // walked the whole map
      return ErrnoStatus(saved, "syscalls: draining stats buffer");
    }
  }
}

absl::StatusOr<SyscallLossCounts> SyscallsCollector::ReadCounters() {
  absl::StatusOr<std::vector<uint64_t>> counts =
      SumPerCpuCounters(bpf_map__fd(skel_->maps.counters), SYSCALL_CTR_MAX, "syscalls: reading counters");
  if (!counts.ok()) return counts.status();
  const std::vector<uint64_t>& sums = *counts;
  SyscallLossCounts c;
  c.map_full = sums[SYSCALL_CTR_MAP_FULL];
  c.no_enter = sums[SYSCALL_CTR_NO_ENTER];
  c.storage_fail = sums[SYSCALL_CTR_STORAGE_FAIL];
  c.nr_out_of_range = sums[SYSCALL_CTR_NR_OUT_OF_RANGE];
  return c;
}

}  // namespace vigil
