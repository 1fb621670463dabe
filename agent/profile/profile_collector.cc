#include "agent/profile/profile_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bpf/profile.skel.h"

namespace vigil {
namespace {

// A perf event fd until libbpf takes it over (bpf_link destroy closes it).
class PerfFd {
 public:
  explicit PerfFd(int fd) : fd_(fd) {}
  ~PerfFd() {
    if (fd_ >= 0) close(fd_);
  }
  PerfFd(const PerfFd&) = delete;
  PerfFd& operator=(const PerfFd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

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

}  // namespace

void ProfileCollector::LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }

absl::StatusOr<std::unique_ptr<ProfileCollector>> ProfileCollector::Create(
    const ProfileConfig& config) {
  if (config.sample_hz < 1 || config.sample_hz > 1000) {
    return absl::InvalidArgumentError("profile: sample_hz must be in [1, 1000]");
  }
  if (config.max_entries == 0 || config.stack_entries == 0 || config.batch_size == 0) {
    return absl::InvalidArgumentError(
        "profile: max_entries, stack_entries and batch_size must be > 0");
  }
  // This load's libbpf warnings, for its error messages.
  LibbpfLogCapture libbpf_log;
  SkelPtr<profile_bpf> skel(profile_bpf::open());
  if (!skel) return ErrnoStatus(errno, "opening profile.bpf.o");
  for (bpf_map* m : {skel->maps.counts_a, skel->maps.counts_b}) {
    if (int err = bpf_map__set_max_entries(m, config.max_entries)) {
      return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
    }
  }
  for (bpf_map* m : {skel->maps.stacks_a, skel->maps.stacks_b}) {
    if (int err = bpf_map__set_max_entries(m, config.stack_entries)) {
      return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
    }
  }
  if (int err = profile_bpf::load(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "loading profile.bpf.o"));
  }
  std::unique_ptr<ProfileCollector> c(new ProfileCollector(config, std::move(skel)));
  if (absl::Status s = c->AttachAllCpus(); !s.ok()) return s;
  return c;
}

ProfileCollector::ProfileCollector(const ProfileConfig& config, SkelPtr<profile_bpf> skel)
    : config_(config),
      skel_(std::move(skel)),
      symbols_(NewBccSymbolizer(config.symbols), NewProcProcessInfo(), config.symbols),
      keys_(config.batch_size),
      values_(config.batch_size) {}

// Links first (they hold the perf fds and reference the program), then the
// skeleton: member order does this.
ProfileCollector::~ProfileCollector() { links_.clear(); }

absl::Status ProfileCollector::AttachAllCpus() {
  LibbpfLogCapture libbpf_log;  // the attach's warnings, for its error message
  const std::vector<int> cpus = OnlineCpus();
  if (cpus.empty())
    return absl::InternalError("profile: no online CPUs in /sys/devices/system/cpu/online");
  // Probe for a hardware PMU on the first CPU; most VMs have none.
  uint32_t type = PERF_TYPE_HARDWARE;
  uint64_t cfg = PERF_COUNT_HW_CPU_CYCLES;
  {
    PerfFd probe(OpenSampler(cpus[0], type, cfg, config_.sample_hz));
    if (probe.get() < 0) {
      type = PERF_TYPE_SOFTWARE;
      cfg = PERF_COUNT_SW_CPU_CLOCK;
    }
  }
  event_ = type == PERF_TYPE_HARDWARE ? "cycles" : "cpu-clock";
  for (int cpu : cpus) {
    PerfFd fd(OpenSampler(cpu, type, cfg, config_.sample_hz));
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
  return absl::OkStatus();
}

std::vector<uint32_t> ProfileCollector::ProgramIds() const {
  return LoadedProgramIds({skel_->progs.vigil_profile_sample});
}

absl::StatusOr<ProfileLossCounts> ProfileCollector::ReadCounters() {
  absl::StatusOr<std::vector<uint64_t>> counts = SumPerCpuCounters(
      bpf_map__fd(skel_->maps.counters), PROFILE_CTR_MAX, "profile: reading counters");
  if (!counts.ok()) return counts.status();
  const std::vector<uint64_t>& sums = *counts;
  ProfileLossCounts c;
  c.samples = sums[PROFILE_CTR_SAMPLES];
  c.idle = sums[PROFILE_CTR_IDLE];
  c.map_full = sums[PROFILE_CTR_MAP_FULL];
  c.user_collisions = sums[PROFILE_CTR_USER_COLLISION];
  c.kernel_collisions = sums[PROFILE_CTR_KERNEL_COLLISION];
  c.stack_map_full = sums[PROFILE_CTR_STACK_MAP_FULL];
  c.no_buffer = sums[PROFILE_CTR_NO_BUFFER];
  return c;
}

absl::StatusOr<ProfileInterval> ProfileCollector::Collect() {
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

  // 1. Drain the counts.
  std::vector<std::pair<profile_key, profile_value>> entries;
  uint64_t drain_failed = 0;
  const absl::Status drained = DrainHash(
      counts_fd, config_.max_entries, &keys_, &values_, "profile: draining counts", &drain_failed,
      [&entries](const profile_key& k, const profile_value& v) { entries.emplace_back(k, v); });
  LogDrainFailure(drained, drain_failed);

  // 2. Read the stacks they reference, then clear the whole stack map (it
  // may hold stacks whose count did not fit). Stack maps have no batch ops;
  // nothing writes this one now, so the key walk cannot race.
  absl::flat_hash_map<int32_t, std::vector<uint64_t>> stacks;
  std::vector<uint64_t> ips(VIGIL_PROFILE_MAX_DEPTH);
  for (const auto& [k, v] : entries) {
    for (int32_t id : {k.user_stack_id, k.kernel_stack_id}) {
      if (id < 0 || stacks.contains(id)) continue;
      std::fill(ips.begin(), ips.end(), 0);
      std::vector<uint64_t>& out = stacks[id];
      if (bpf_map_lookup_elem(stacks_fd, &id, ips.data()) == 0) {
        for (uint64_t ip : ips) {
          if (ip == 0) break;
          out.push_back(ip);
        }
      }
    }
  }
  {
    uint32_t key = 0, next_key = 0;
    std::vector<uint32_t> all;
    int err = bpf_map_get_next_key(stacks_fd, nullptr, &next_key);
    while (err == 0) {
      all.push_back(next_key);
      key = next_key;
      err = bpf_map_get_next_key(stacks_fd, &key, &next_key);
    }
    for (uint32_t k : all) bpf_map_delete_elem(stacks_fd, &k);
  }

  // 3. Symbolize.
  ProfileInterval out;
  symbols_.BeginInterval();
  static const FramePtr kUserLost =
      std::make_shared<const Frame>(Frame{"[user stack lost]", "[vigil]", 0, false});
  static const FramePtr kKernelLost =
      std::make_shared<const Frame>(Frame{"[kernel stack lost]", "[vigil]", 0, true});
  std::vector<FramePtr> kframes, uframes;
  for (const auto& [k, v] : entries) {
    kframes.clear();
    uframes.clear();
    if (k.kernel_stack_id >= 0) {
      for (uint64_t ip : stacks[k.kernel_stack_id]) kframes.push_back(symbols_.Kernel(ip));
    } else if (k.kernel_stack_id == -EEXIST || k.kernel_stack_id == -ENOMEM) {
      kframes.push_back(kKernelLost);
    }
    if (k.user_stack_id >= 0) {
      for (uint64_t ip : stacks[k.user_stack_id]) uframes.push_back(symbols_.User(k.tgid, ip));
    } else if (k.user_stack_id == -EEXIST || k.user_stack_id == -ENOMEM) {
      uframes.push_back(kUserLost);
    }
    ProfileStackRecord r;
    r.tgid = k.tgid;
    r.tid = k.tid;
    r.samples = v.samples;
    memcpy(r.comm, v.comm, sizeof(r.comm));
    memcpy(r.pcomm, v.pcomm, sizeof(r.pcomm));
    r.truncated = !uframes.empty() &&
                  (uframes.size() >= VIGIL_PROFILE_MAX_DEPTH || !IsStackRoot(*uframes.back()));
    out.Append(r, kframes, uframes);
  }
  symbols_.EndInterval();
  out.Seal();

  absl::StatusOr<ProfileLossCounts> now = ReadCounters();
  if (!now.ok()) return now.status();
  out.loss.samples = now->samples - last_counters_.samples;
  out.loss.idle = now->idle - last_counters_.idle;
  out.loss.map_full = now->map_full - last_counters_.map_full;
  out.loss.user_collisions = now->user_collisions - last_counters_.user_collisions;
  out.loss.kernel_collisions = now->kernel_collisions - last_counters_.kernel_collisions;
  out.loss.stack_map_full = now->stack_map_full - last_counters_.stack_map_full;
  out.loss.no_buffer = now->no_buffer - last_counters_.no_buffer;
  out.loss.drain_failed = drain_failed;
  last_counters_ = *now;
  return out;
}

}  // namespace vigil
