#include "agent/profile/profile_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bpf/profile.skel.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

int OpenSampler(int cpu, uint32_t type, uint64_t config, uint32_t hz) {
  perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  if (type == PERF_TYPE_SOFTWARE) {
    // A fixed period of CPU time: exact, no frequency auto-tuning.
    attr.sample_period = 1000000000ull / hz;
  } else {
    attr.freq = 1;
    attr.sample_freq = hz;
  }
  attr.disabled = 0;
  return static_cast<int>(syscall(__NR_perf_event_open, &attr, -1 /* any pid */, cpu,
                                  -1 /* no group */, PERF_FLAG_FD_CLOEXEC));
}

// CPUs listed in a sysfs cpu list such as "0-3,6".
std::vector<int> OnlineCpus() {
  std::vector<int> cpus;
  FILE* f = fopen("/sys/devices/system/cpu/online", "r");
  if (f == nullptr) return cpus;
  char buf[4096] = {};
  if (fgets(buf, sizeof(buf), f) == nullptr) buf[0] = '\0';
  fclose(f);
  char* save = nullptr;
  for (char* tok = strtok_r(buf, ",\n", &save); tok; tok = strtok_r(nullptr, ",\n", &save)) {
    int a = 0, b = 0;
    int n = sscanf(tok, "%d-%d", &a, &b);
    if (n == 1) b = a;
    if (n < 1) continue;
    for (int c = a; c <= b; ++c) cpus.push_back(c);
  }
  return cpus;
}

// Deletes every key of a map nothing writes any more (stack maps have no
// batch operations).
template <typename Key>
void ClearMap(int fd) {
  Key key{}, next{};
  std::vector<Key> all;
  int err = bpf_map_get_next_key(fd, nullptr, &next);
  while (err == 0) {
    all.push_back(next);
    key = next;
    err = bpf_map_get_next_key(fd, &key, &next);
  }
  for (const Key& k : all) bpf_map_delete_elem(fd, &k);
}

}  // namespace

// The unwind tables' maps: rows are written through short-lived mappings
// of the pages they land on (UnwindTables), not a mapping of the whole map.
void ProfileCollector::StartUnwindTables() {
  UnwindMaps maps;
  maps.rows_fd = bpf_map__fd(skel_->maps.unwind_rows);
  maps.files_fd = bpf_map__fd(skel_->maps.unwind_files);
  maps.procs_fd = bpf_map__fd(skel_->maps.unwind_procs);
  maps.wanted_fd = bpf_map__fd(skel_->maps.unwind_wanted);
  maps.notify_fd = bpf_map__fd(skel_->maps.unwind_notify);
  unwind_ = std::make_unique<UnwindTables>(config_.unwind, maps);
  unwind_->Start();
}

namespace {

// Why page-fault sampling cannot run on this kernel: its tracepoints are
// x86's (arch/x86/mm/fault.c); empty when both are in the kernel's BTF.
std::string MissingFaultTracepoints(const std::string& name) {
  for (const char* suffix : {"_user", "_kernel"}) {
    const std::string tp = absl::StrCat(name, suffix);
    if (libbpf_find_vmlinux_btf_id(tp.c_str(), BPF_TRACE_RAW_TP) < 0) {
      return absl::StrCat("page-fault sampling off: this kernel has no tp_btf/", tp,
                          " (an x86 tracepoint)");
    }
  }
  return "";
}

// Opens, sizes and loads profile.bpf.o; without probe_stacks,
// vigil_profile_probe is not even verified, nor the fault programs without
// faults.
absl::StatusOr<SkelPtr<profile_bpf>> OpenAndLoad(const ProfileConfig& config, bool probe_stacks,
                                                 bool faults) {
  // This load's libbpf warnings, for its error messages.
  LibbpfLogCapture libbpf_log;
  SkelPtr<profile_bpf> skel(profile_bpf::open());
  if (!skel) return ErrnoStatus(errno, "opening profile.bpf.o");
  for (bpf_map* m : {skel->maps.counts_a, skel->maps.counts_b}) {
    if (int err = bpf_map__set_max_entries(m, config.max_entries)) {
      return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
    }
  }
  const std::pair<bpf_map*, uint32_t> sizes[] = {
      {skel->maps.unwind_rows, config.unwind.max_rows},
      {skel->maps.unwind_files, config.unwind.max_files},
      {skel->maps.unwind_procs, config.unwind.max_processes},
  };
  for (const auto& [m, n] : sizes) {
    if (int err = bpf_map__set_max_entries(m, n)) {
      return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
    }
  }
  for (bpf_map* m :
       {skel->maps.stacks_a, skel->maps.stacks_b, skel->maps.ustacks_a, skel->maps.ustacks_b}) {
    if (int err = bpf_map__set_max_entries(m, config.stack_entries)) {
      return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
    }
  }
  // Off (or no tracepoint to attach to): the fault programs are not even
  // verified.
  skel->rodata->fault_period = config.fault_period;
  for (auto [prog, suffix] : {std::pair{skel->progs.vigil_profile_fault_user, "_user"},
                              std::pair{skel->progs.vigil_profile_fault_kernel, "_kernel"}}) {
    if (!faults) {
      bpf_program__set_autoload(prog, false);
    } else if (int err = bpf_program__set_attach_target(
                   prog, 0, absl::StrCat(config.fault_tracepoint, suffix).c_str())) {
      return ErrnoStatus(err, "setting the page-fault tracepoint");
    }
  }
  skel->rodata->map_min_bytes = config.map_min_bytes;
  if (config.map_min_bytes == 0) bpf_program__set_autoload(skel->progs.vigil_profile_map, false);
  if (!probe_stacks) bpf_program__set_autoload(skel->progs.vigil_profile_probe, false);
  if (int err = profile_bpf::load(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "loading profile.bpf.o"));
  }
  return skel;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProfileCollector>> ProfileCollector::Create(
    const ProfileConfig& config, int exit_hooks_fd) {
  if (config.sample_hz < 1 || config.sample_hz > 1000) {
    return absl::InvalidArgumentError("profile: sample_hz must be in [1, 1000]");
  }
  if (config.fault_period > kMaxFaultPeriod) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile: fault_period must be in [0, ", kMaxFaultPeriod, "]"));
  }
  if (config.map_min_bytes > kMaxMapMinBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile: map_min_bytes must be in [0, ", kMaxMapMinBytes, "]"));
  }
  if (config.max_entries == 0 || config.stack_entries == 0 || config.batch_size == 0) {
    return absl::InvalidArgumentError(
        "profile: max_entries, stack_entries and batch_size must be > 0");
  }
  if (config.unwind.max_rows == 0 || config.unwind.max_files == 0 ||
      config.unwind.max_processes == 0) {
    return absl::InvalidArgumentError(
        "profile: unwind max_rows, max_files and max_processes must be > 0");
  }
  // vigil probe --stacks' program needs the newest kernel features here
  // (task storage and attach cookies in a uprobe): a kernel that refuses it
  // still gets the profiler, without probe stacks.
  std::string faults_off =
      config.fault_period > 0 ? MissingFaultTracepoints(config.fault_tracepoint) : "";
  const bool faults = config.fault_period > 0 && faults_off.empty();
  absl::StatusOr<SkelPtr<profile_bpf>> skel = OpenAndLoad(config, /*probe_stacks=*/true, faults);
  if (!skel.ok()) {
    absl::StatusOr<SkelPtr<profile_bpf>> without = OpenAndLoad(config, false, faults);
    // Last, a kernel whose verifier refuses the fault programs still gets
    // the CPU profiler.
    if (!without.ok() && faults) {
      const absl::Status refused = without.status();
      without = OpenAndLoad(config, false, false);
      if (without.ok()) faults_off = absl::StrCat("page-fault sampling off: ", refused.message());
    }
    if (!without.ok()) return skel.status();
    fprintf(stderr, "vigild: profile: no stacks for vigil probe on this kernel: %s\n",
            std::string(skel.status().message()).c_str());
    skel = std::move(without);
  }
  std::unique_ptr<ProfileCollector> c(new ProfileCollector(config, *std::move(skel)));
  c->fault_off_reason_ = faults_off;
  c->StartUnwindTables();
  if (absl::Status s = c->AttachAllCpus(); !s.ok()) return s;
  c->AttachMaps(exit_hooks_fd);
  return c;
}

ProfileCollector::ProfileCollector(const ProfileConfig& config, SkelPtr<profile_bpf> skel)
    : config_(config),
      skel_(std::move(skel)),
      symbols_(NewBccSymbolizer(config.symbols), NewProcProcessInfo(), config.symbols),
      keys_(config.batch_size),
      values_(config.batch_size) {}

// Links first (they hold the perf fds and reference the program), then the
// unwind tables' worker, then the skeleton.
ProfileCollector::~ProfileCollector() {
  if (exit_hooks_.get() >= 0) {
    const uint32_t slot = 0;
    bpf_map_delete_elem(exit_hooks_.get(), &slot);
  }
  map_link_.reset();
  links_.clear();
  fault_links_.clear();
  exec_link_.reset();
  fork_link_.reset();
  unwind_.reset();
}

absl::Status ProfileCollector::AttachAllCpus() {
  LibbpfLogCapture libbpf_log;  // the attach's warnings, for its error message
  const std::vector<int> cpus = OnlineCpus();
  if (cpus.empty())
    return absl::InternalError("profile: no online CPUs in /sys/devices/system/cpu/online");
  // Probe for a hardware PMU on the first CPU; most VMs have none.
  uint32_t type = PERF_TYPE_HARDWARE;
  uint64_t cfg = PERF_COUNT_HW_CPU_CYCLES;
  {
    UniqueFd probe(OpenSampler(cpus[0], type, cfg, config_.sample_hz));
    if (probe.get() < 0) {
      type = PERF_TYPE_SOFTWARE;
      cfg = PERF_COUNT_SW_CPU_CLOCK;
    }
  }
  event_ = type == PERF_TYPE_HARDWARE ? "cycles" : "cpu-clock";
  for (int cpu : cpus) {
    UniqueFd fd(  // until the bpf_link takes it
        OpenSampler(cpu, type, cfg, config_.sample_hz));
    if (fd.get() < 0) {
      const int err = errno;
      if (err == ENODEV) continue;  // went offline since we read the list
      return ErrnoStatus(
          err, absl::StrCat("profile: perf_event_open(", event_, ") on CPU ", cpu,
                            err == EACCES || err == EPERM ? " (needs CAP_PERFMON or root)" : ""));
    }
    bpf_link* link = bpf_program__attach_perf_event(skel_->progs.vigil_profile_sample, fd.get());
    if (link == nullptr) {
      return libbpf_log.Annotate(
          ErrnoStatus(errno, absl::StrCat("profile: attaching to CPU ", cpu)));
    }
    fd.release();  // the link closes it
    links_.emplace_back(link);
  }
  if (links_.empty()) return absl::InternalError("profile: no CPU accepted a sampling event");
  if (config_.fault_period > 0 && fault_off_reason_.empty()) AttachFaults();
  // Without these a new process's first samples stop at the leaf, and an
  // exec()ed one keeps its old mappings until a pc falls outside them:
  // degraded, not fatal.
  const auto attach_optional = [](bpf_program* prog, const char* hook, const char* without) {
    LinkPtr link(bpf_program__attach(prog));
    if (link == nullptr) {
      fprintf(stderr, "vigild: profile: %s not attached (%s): %s\n", hook, strerror(errno),
              without);
    }
    return link;
  };
  exec_link_ =
      attach_optional(skel_->progs.vigil_profile_exec, "sched_process_exec",
                      "a process's mappings are re-read only when a pc falls outside them");
  fork_link_ = attach_optional(skel_->progs.vigil_profile_fork, "sched_process_fork",
                               "a new process's first samples keep only their leaf frame");
  return absl::OkStatus();
}

void ProfileCollector::AttachMaps(int exit_hooks_fd) {
  if (config_.map_min_bytes == 0) return;
  if (exit_hooks_fd >= 0) {
    // A tail call from the syscalls program, which runs at every exit
    // anyway, costs the syscalls that are not mmap/munmap/brk nothing; a
    // program of our own on sys_exit would cost each of them its dispatch.
    UniqueFd dup(fcntl(exit_hooks_fd, F_DUPFD_CLOEXEC, 0));
    const uint32_t slot = 0;
    const int prog = bpf_program__fd(skel_->progs.vigil_profile_map);
    if (dup.get() >= 0 && bpf_map_update_elem(dup.get(), &slot, &prog, BPF_ANY) == 0) {
      exit_hooks_ = std::move(dup);
      map_hook_ = "tail call from the syscalls program";
      return;
    }
    fprintf(stderr,
            "vigild: profile: the syscalls program's exit hook slot refused the large map-call "
            "hook (%s); it gets a sys_exit program of its own\n",
            strerror(errno));
  }
  LibbpfLogCapture libbpf_log;
  map_link_.reset(bpf_program__attach(skel_->progs.vigil_profile_map));
  if (map_link_ == nullptr) {
    map_off_reason_ = absl::StrCat(
        "large mmap/munmap/brk calls not recorded: ",
        libbpf_log.Annotate(ErrnoStatus(errno, "attaching tp_btf/sys_exit")).message());
    return;
  }
  map_hook_ = "own tp_btf/sys_exit program";
}

void ProfileCollector::AttachFaults() {
  LibbpfLogCapture libbpf_log;
  // One without the other would miss faults without saying so: both or
  // none.
  for (bpf_program* prog :
       {skel_->progs.vigil_profile_fault_user, skel_->progs.vigil_profile_fault_kernel}) {
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) {
      fault_links_.clear();
      fault_off_reason_ = absl::StrCat(
          "page-fault sampling off: ",
          libbpf_log
              .Annotate(ErrnoStatus(errno, absl::StrCat("attaching ", bpf_program__name(prog))))
              .message());
      return;
    }
    fault_links_.emplace_back(link);
  }
}

ProbeStackHooks ProfileCollector::probe_stack_hooks() const {
  ProbeStackHooks h;
  // nullptr when this kernel refused it (Create).
  if (bpf_program__fd(skel_->progs.vigil_profile_probe) >= 0)
    h.prog = skel_->progs.vigil_profile_probe;
  h.stacks_fd = bpf_map__fd(skel_->maps.probe_stacks);
  h.ustacks_fd = bpf_map__fd(skel_->maps.probe_ustacks);
  return h;
}

std::vector<uint32_t> ProfileCollector::ProgramIds() const {
  return LoadedProgramIds({skel_->progs.vigil_profile_sample, skel_->progs.vigil_profile_fault_user,
                           skel_->progs.vigil_profile_fault_kernel, skel_->progs.vigil_profile_exec,
                           skel_->progs.vigil_profile_fork, skel_->progs.vigil_profile_map});
}

absl::StatusOr<ProfileIntervals> ProfileCollector::Collect() {
  const uint32_t retired = active_;
  const uint32_t next = 1 - active_;
  skel_->bss->active_buf = next;
  // Rewriting a map-in-map slot (with the map it already holds) returns only
  // after an RCU grace period: every program that read the old index has
  // finished, so the retired buffer has no writers from here on.
  const int outer = bpf_map__fd(skel_->maps.counts_bufs);
  const int same = bpf_map__fd(retired == 0 ? skel_->maps.counts_a : skel_->maps.counts_b);
  if (bpf_map_update_elem(outer, &retired, &same, BPF_ANY)) {
    return ErrnoStatus(errno, "profile: waiting for the buffer swap");
  }
  active_ = next;
  const int counts_fd = bpf_map__fd(retired == 0 ? skel_->maps.counts_a : skel_->maps.counts_b);
  const int stacks_fd = bpf_map__fd(retired == 0 ? skel_->maps.stacks_a : skel_->maps.stacks_b);
  const int ustacks_fd = bpf_map__fd(retired == 0 ? skel_->maps.ustacks_a : skel_->maps.ustacks_b);

  // 1. Drain the counts.
  std::vector<std::pair<profile_key, profile_value>> entries;
  uint64_t drain_failed = 0;
  const absl::Status drained = DrainHash(
      counts_fd, config_.max_entries, &keys_, &values_, "profile: draining counts", &drain_failed,
      [&entries](const profile_key& k, const profile_value& v) { entries.emplace_back(k, v); });
  LogDrainFailure(drained, drain_failed);

  // 2. Read the stacks they reference, then clear both stack maps (they may
  // hold stacks whose count did not fit). Nothing writes them now, so the
  // key walks cannot race.
  absl::flat_hash_map<int32_t, std::vector<uint64_t>> kstacks;
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> ustacks;
  std::vector<uint64_t> ips(VIGIL_PROFILE_MAX_DEPTH);
  auto read_ips = [&ips](std::vector<uint64_t>* out) {
    for (uint64_t ip : ips) {
      if (ip == 0) break;
      out->push_back(ip);
    }
  };
  for (const auto& [k, v] : entries) {
    if (k.kernel_stack_id >= 0 && !kstacks.contains(k.kernel_stack_id)) {
      std::fill(ips.begin(), ips.end(), 0);
      std::vector<uint64_t>& out = kstacks[k.kernel_stack_id];
      if (bpf_map_lookup_elem(stacks_fd, &k.kernel_stack_id, ips.data()) == 0) read_ips(&out);
    }
    if (k.user_stack != 0 && !ustacks.contains(k.user_stack)) {
      std::fill(ips.begin(), ips.end(), 0);
      std::vector<uint64_t>& out = ustacks[k.user_stack];
      if (bpf_map_lookup_elem(ustacks_fd, &k.user_stack, ips.data()) == 0) read_ips(&out);
    }
  }
  ClearMap<uint32_t>(stacks_fd);
  ClearMap<uint64_t>(ustacks_fd);

  // 3. Symbolize.
  ProfileIntervals both;
  ProfileInterval& out = both.cpu;
  symbols_.BeginInterval();
  static const FramePtr kUserLost =
      std::make_shared<const Frame>(Frame::Of("[user stack lost]", "[vigil]"));
  static const FramePtr kKernelLost =
      std::make_shared<const Frame>(Frame::Of("[kernel stack lost]", "[vigil]", 0, true));
  std::vector<FramePtr> kframes, uframes;
  for (const auto& [k, v] : entries) {
    kframes.clear();
    uframes.clear();
    if (k.kernel_stack_id >= 0) {
      for (uint64_t ip : kstacks[k.kernel_stack_id]) kframes.push_back(symbols_.Kernel(ip));
    } else if (k.kernel_stack_id == -EEXIST || k.kernel_stack_id == -ENOMEM) {
      kframes.push_back(kKernelLost);
    }
    if (k.user_stack != 0) {
      for (uint64_t ip : ustacks[k.user_stack]) uframes.push_back(symbols_.User(k.tgid, ip));
    } else if (k.user_end != UNWIND_END_NO_USER) {
      uframes.push_back(kUserLost);
    }
    ProfileStackRecord r;
    r.tgid = k.tgid;
    r.tid = k.tid;
    r.samples = v.samples;
    r.bytes = v.bytes;
    r.kind = static_cast<uint8_t>(k.kind);
    memcpy(r.comm, v.comm, sizeof(r.comm));
    memcpy(r.pcomm, v.pcomm, sizeof(r.pcomm));
    // The walk knows whether it reached the outermost frame.
    r.truncated = k.user_end != UNWIND_END_ROOT && k.user_end != UNWIND_END_NO_USER;
    (r.kind == PROFILE_KIND_CPU ? out : both.memory).Append(r, kframes, uframes);
  }
  symbols_.EndInterval();
  out.Seal();
  both.memory.Seal();

  if (absl::Status s = counters_.ReadInto(bpf_map__fd(skel_->maps.counters), &out.loss); !s.ok()) {
    return s;
  }
  // The walks' frame and end counts are totals since load, not losses.
  const std::vector<uint64_t>& totals = counters_.totals();
  unwind_counts_.frames = totals[PROFILE_CTR_FRAMES];
  unwind_counts_.cfi_frames = totals[PROFILE_CTR_CFI_FRAMES];
  unwind_counts_.fp_frames = totals[PROFILE_CTR_FP_FRAMES];
  for (int i = 0; i < UNWIND_END_MAX; ++i)
    unwind_counts_.ends[i] = totals[PROFILE_CTR_END_BASE + i];
  out.loss.drain_failed = drain_failed;
  return both;
}

}  // namespace vigil
