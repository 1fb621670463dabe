#include "agent/memory/memory_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/udpdrops/kernel_btf.h"
#include "bpf/memory.skel.h"

namespace vigil {
namespace {

// MemTotal and MemAvailable, in bytes.
void ReadMeminfo(uint64_t* total, uint64_t* available) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  for (int i = 0; i < 64 && std::getline(in, line); ++i) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &kib)) continue;
    if (f[0] == "MemTotal:") *total = kib * 1024;
    if (f[0] == "MemAvailable:") *available = kib * 1024;
  }
}

std::string Comm(const char* c) { return std::string(c, strnlen(c, VIGIL_MEMORY_COMM_LEN)); }

uint32_t Pages(uint64_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX)); }

}  // namespace

MemoryCollector::MemoryCollector(const MemoryConfig& config, SkelPtr<memory_bpf> skel)
    : config_(config), skel_(std::move(skel)) {}

MemoryCollector::~MemoryCollector() = default;

absl::StatusOr<std::unique_ptr<MemoryCollector>> MemoryCollector::Create(
    const MemoryConfig& config) {
  if (config.max_processes == 0 || config.max_cgroups == 0 || config.max_cgroup_dirs == 0) {
    return absl::InvalidArgumentError(
        "memory: max_processes, max_cgroups and max_cgroup_dirs must be > 0");
  }
  std::vector<std::string> missing;
  // mark_victim is (int pid) on 6.1 and (struct task_struct *, uid_t) later:
  // the typedef's arity picks the variant.
  int oom_args = 0;
  absl::StatusOr<BtfPtr> vmlinux = LoadVmlinuxBtf();
  if (vmlinux.ok()) {
    absl::StatusOr<int> n = TracepointArgCount(vmlinux->get(), "mark_victim");
    if (n.ok()) oom_args = *n;
  }
  if (oom_args == 0)
    missing.push_back("OOM kills (no mark_victim tracepoint in this kernel's BTF)");

  LibbpfLogCapture libbpf_log;
  SkelPtr<memory_bpf> skel(memory_bpf::open());
  if (!skel) return ErrnoStatus(errno, "opening memory.bpf.o");
  bpf_program__set_autoload(skel->progs.vigil_mark_victim_pid, oom_args == 1);
  bpf_program__set_autoload(skel->progs.vigil_mark_victim_task, oom_args >= 2);
  if (int err = memory_bpf::load(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "loading memory.bpf.o"));
  }
  auto c = std::unique_ptr<MemoryCollector>(new MemoryCollector(config, std::move(skel)));
  c->iter_link_.reset(bpf_program__attach_iter(c->skel_->progs.vigil_memory_iter, nullptr));
  if (!c->iter_link_) {
    return libbpf_log.Annotate(ErrnoStatus(errno, "attaching the task iterator"));
  }
  if (oom_args != 0) {
    bpf_program* p = oom_args == 1 ? c->skel_->progs.vigil_mark_victim_pid
                                   : c->skel_->progs.vigil_mark_victim_task;
    bpf_link* l = bpf_program__attach(p);
    if (l == nullptr) {
      missing.push_back(
          absl::StrCat("OOM kills (attaching tp_btf/mark_victim: ", strerror(errno), ")"));
    } else {
      c->skel_->links.vigil_mark_victim_pid = oom_args == 1 ? l : nullptr;
      c->skel_->links.vigil_mark_victim_task = oom_args == 1 ? nullptr : l;
    }
    c->oom_rb_.reset(ring_buffer__new(bpf_map__fd(c->skel_->maps.ooms), &MemoryCollector::OnOom,
                                      c.get(), nullptr));
    if (!c->oom_rb_) return ErrnoStatus(errno, "opening the OOM ring buffer");
  }
  absl::StatusOr<CgroupReader> cg = CgroupReader::Open(config.max_cgroup_dirs);
  if (cg.ok()) {
    c->cgroups_ = std::make_unique<CgroupReader>(*std::move(cg));
  } else {
    missing.push_back(absl::StrCat("cgroup memory (", cg.status().message(), ")"));
  }
  c->degraded_ = missing.empty() ? "" : absl::StrCat("without ", absl::StrJoin(missing, "; "));
  c->page_size_ = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // Ring buffer records carry boot-clock stamps (they count suspend).
  timespec boot;
  clock_gettime(CLOCK_BOOTTIME, &boot);
  c->boot_ = absl::Now() - absl::DurationFromTimespec(boot);
  return c;
}

std::vector<uint32_t> MemoryCollector::ProgramIds() const {
  return LoadedProgramIds({skel_->progs.vigil_memory_iter, skel_->progs.vigil_mark_victim_pid,
                           skel_->progs.vigil_mark_victim_task});
}

int MemoryCollector::OnOom(void* self, void* data, size_t size) {
  auto* c = static_cast<MemoryCollector*>(self);
  if (size < sizeof(memory_oom)) return 0;
  if (c->pending_ooms_.size() >= 4096) {
    ++c->oom_over_cap_;  // counted with the ring buffer's losses
    return 0;
  }
  memory_oom e;
  memcpy(&e, data, sizeof(e));
  c->pending_ooms_.push_back(e);
  return 0;
}

absl::StatusOr<std::vector<ProcMemSample>> MemoryCollector::Iterate() {
  std::vector<ProcMemSample> out;
  bool cut = false;
  // The iterator stops itself; the cap keeps a runaway from holding the
  // collection thread.
  absl::Status s = ReadIterRecords(iter_link_.get(), sizeof(memory_proc),
                                   size_t{config_.max_processes} * 4 + 1024, &buf_,
                                   "memory: task iterator", &cut, [&](const char* rec) {
                                     memory_proc p;
                                     memcpy(&p, rec, sizeof(p));
                                     ProcMemSample& s = out.emplace_back();
                                     s.tgid = p.tgid;
                                     s.ppid = p.ppid;
                                     s.start_ns = p.start_ns;
                                     s.cgroup_id = p.cgroup_id;
                                     s.anon = Pages(p.anon_pages);
                                     s.file = Pages(p.file_pages);
                                     s.shmem = Pages(p.shmem_pages);
                                     s.swap = Pages(p.swap_pages);
                                     memcpy(s.comm, p.comm, sizeof(s.comm));
                                   });
  if (!s.ok()) return s;
  // Far more tasks than max_processes: the rest of the pass is not read
  // (the smallest are dropped and counted by CapProcesses anyway).
  if (cut) ++iter_cut_;
  return out;
}

absl::StatusOr<MemoryInterval> MemoryCollector::Collect(absl::Time now) {
  MemoryInterval iv;
  iv.page_size = page_size_;
  const absl::Time t0 = absl::Now();
  absl::StatusOr<std::vector<ProcMemSample>> procs = Iterate();
  last_iteration_ = absl::Now() - t0;
  if (!procs.ok()) {
    iv.loss.read_failed = 1;
    fprintf(stderr, "vigild: %s (counted as read_failed)\n",
            std::string(procs.status().message()).c_str());
  } else {
    iv.procs = *std::move(procs);
  }
  CapProcesses(&iv.procs, config_.max_processes, &iv.loss);
  iv.loss.processes_over_cap += std::exchange(iter_cut_, 0);

  // Cgroups of the recorded processes, the most populated first.
  if (cgroups_) {
    absl::flat_hash_map<uint64_t, uint32_t> members;
    for (const ProcMemSample& s : iv.procs) ++members[s.cgroup_id];
    std::vector<std::pair<uint32_t, uint64_t>> order;
    for (const auto& [id, n] : members) order.emplace_back(n, id);
    std::sort(order.rbegin(), order.rend());
    for (const auto& [n, id] : order) {
      if (iv.cgroups.size() >= config_.max_cgroups) {
        ++iv.loss.cgroups_over_cap;
        continue;
      }
      CgroupMemSample c;
      c.id = id;
      c.processes = n;
      c.path = cgroups_->Path(id, now);
      if (c.path.empty()) continue;
      absl::StatusOr<CgroupUsage> u = cgroups_->Read(c.path);
      if (u.ok()) {
        c.usage_bytes = u->usage_bytes;
        c.limit_bytes = u->limit_bytes;
        c.swap_bytes = u->swap_bytes;
      }
      iv.cgroups.push_back(std::move(c));
    }
  }

  // OOM kills since the last interval.
  if (oom_rb_) {
    pending_ooms_.clear();
    ring_buffer__consume(oom_rb_.get());
    for (const memory_oom& e : pending_ooms_) {
      OomKillRecord k;
      k.at = boot_ + absl::Nanoseconds(static_cast<int64_t>(e.ts_ns));
      k.victim_pid = e.victim_tgid;
      k.trigger_pid = e.trigger_tgid;
      k.trigger_comm = Comm(e.trigger_comm);
      uint64_t cgroup = e.victim_cgroup_id;
      if (e.victim_rss_known != 0) {
        k.victim_comm = Comm(e.victim_comm);
        k.victim_rss_bytes =
            (e.victim_anon_pages + e.victim_file_pages + e.victim_shmem_pages) * page_size_;
        k.victim_rss_at_kill = true;
      } else if (auto it = last_seen_.find(e.victim_tgid); it != last_seen_.end()) {
        k.victim_comm = Comm(it->second.comm);
        k.victim_rss_bytes = it->second.rss_pages() * page_size_;
        if (cgroup == 0) cgroup = it->second.cgroup_id;
      }
      if (cgroups_ && cgroup != 0) k.victim_cgroup = cgroups_->Path(cgroup, now);
      iv.ooms.push_back(std::move(k));
    }
  }
  last_seen_.clear();
  for (const ProcMemSample& s : iv.procs) last_seen_[s.tgid] = s;

  absl::StatusOr<std::vector<uint64_t>> ctr =
      SumPerCpuCounters(bpf_map__fd(skel_->maps.counters), MEMORY_CTR_MAX, "memory: counters");
  if (ctr.ok()) {
    const uint64_t full = (*ctr)[MEMORY_CTR_OOM_RINGBUF_FULL];
    iv.loss.oom_ringbuf_full = full - std::min(full, last_ringbuf_full_);
    last_ringbuf_full_ = full;
  }
  iv.loss.oom_ringbuf_full += std::exchange(oom_over_cap_, 0);
  ReadMeminfo(&iv.host_total_bytes, &iv.host_available_bytes);
  return iv;
}

}  // namespace vigil
