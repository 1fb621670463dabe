#include "agent/cpu/cpu_collector.h"

#include <dirent.h>
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
#include "absl/time/clock.h"
#include "bpf/cpu.skel.h"
#include "common/read_file.h"

namespace vigil {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t BoottimeNs() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A thread's stat or schedstat: one short line (stat's name field is at
// most 15 bytes, so 1 KiB holds it).
bool ReadSmallFile(const std::string& path, std::string* out) {
  return ReadFileBounded(path, 1024, out) && !out->empty();
}

// Numeric entries of a /proc directory.
template <typename Fn>
void ForEachNumeric(const std::string& dir, Fn&& fn) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    uint32_t id = 0;
    if (absl::SimpleAtoi(e->d_name, &id) && id > 0 && !fn(id)) break;
  }
  closedir(d);
}

}  // namespace

CpuCollector::CpuCollector(const CpuConfig& config) : config_(config) {}
CpuCollector::~CpuCollector() = default;

absl::StatusOr<std::unique_ptr<CpuCollector>> CpuCollector::Create(const CpuConfig& config) {
  if (config.max_tasks == 0 || config.max_threads == 0 || config.max_processes == 0) {
    return absl::InvalidArgumentError("cpu: max_tasks, max_threads and max_processes must be > 0");
  }
  auto c = std::unique_ptr<CpuCollector>(new CpuCollector(config));
  const long hz = sysconf(_SC_CLK_TCK);
  if (hz > 0) c->tick_ns_ = 1000000000ull / static_cast<uint64_t>(hz);
  if (config.source == CpuSource::kProc) {
    c->fallback_reason_ = "cpu-source proc";
    c->deltas_.Begin(BoottimeNs());
    return c;
  }
  absl::Status loaded = [&]() -> absl::Status {
    LibbpfLogCapture libbpf_log;
    SkelPtr<cpu_bpf> skel(cpu_bpf::open());
    if (!skel) return ErrnoStatus(errno, "opening cpu.bpf.o");
    if (int err = cpu_bpf::load(skel.get())) {
      return libbpf_log.Annotate(ErrnoStatus(err, "loading cpu.bpf.o"));
    }
    LinkPtr link(bpf_program__attach_iter(skel->progs.vigil_cpu_iter, nullptr));
    if (!link) return libbpf_log.Annotate(ErrnoStatus(errno, "attaching the task iterator"));
    c->skel_ = std::move(skel);
    c->iter_link_ = std::move(link);
    return absl::OkStatus();
  }();
  if (!loaded.ok()) {
    if (config.source == CpuSource::kBpf) return loaded;
    c->fallback_reason_ = std::string(loaded.message());
  }
  // In the clock of the source's start times (see PassBpf, PassProc).
  c->deltas_.Begin(c->skel_ ? MonotonicNs() : BoottimeNs());
  return c;
}

std::vector<uint32_t> CpuCollector::ProgramIds() const {
  if (!skel_) return {};
  return LoadedProgramIds({skel_->progs.vigil_cpu_iter});
}

absl::Status CpuCollector::PassBpf(TaskPass* pass, bool* cut) {
  pass->dead_runtime_known = true;
  // task->start_time is CLOCK_MONOTONIC (since 5.5; start_boottime is the
  // boot clock).
  pass->at_ns = MonotonicNs();
  return ReadIterRecords(iter_link_.get(), sizeof(cpu_task), config_.max_tasks, &buf_,
                         "cpu: task iterator", cut, [&](const char* rec) {
                           cpu_task t;
                           memcpy(&t, rec, sizeof(t));
                           TaskSample& s = pass->tasks.emplace_back();
                           s.tgid = t.tgid;
                           s.tid = t.tid;
                           s.start_ns = t.start_ns;
                           s.runtime_ns = t.runtime_ns;
                           s.dead_runtime_ns = t.dead_runtime_ns;
                           s.kthread = t.kthread != 0;
                           memcpy(s.comm, t.comm, sizeof(s.comm));
                         });
}

// The fallback: two small reads per thread. Racy by nature (threads come
// and go during the walk); a thread that vanished mid-walk is skipped.
absl::Status CpuCollector::PassProc(TaskPass* pass, bool* cut) {
  pass->dead_runtime_known = false;
  // /proc's starttime counts ticks since boot, suspend included.
  pass->at_ns = BoottimeNs();
  std::string text;
  bool any = false;
  ForEachNumeric("/proc", [&](uint32_t pid) {
    const std::string task_dir = absl::StrCat("/proc/", pid, "/task");
    ForEachNumeric(task_dir, [&](uint32_t tid) {
      if (pass->tasks.size() >= config_.max_tasks) {
        *cut = true;
        return false;
      }
      const std::string dir = absl::StrCat(task_dir, "/", tid);
      if (!ReadSmallFile(dir + "/stat", &text)) return true;
      absl::StatusOr<ProcTaskStat> st = ParseTaskStat(text);
      if (!st.ok()) return true;
      TaskSample& s = pass->tasks.emplace_back();
      s.tgid = pid;
      s.tid = tid;
      s.start_ns = st->start_ticks * tick_ns_;
      s.kthread = st->kthread;
      memcpy(s.comm, st->comm.data(), std::min(st->comm.size(), sizeof(s.comm) - 1));
      // schedstat's first field is se.sum_exec_runtime in ns (the
      // iterator's number); without CONFIG_SCHED_INFO, utime + stime in
      // ticks (10 ms steps).
      uint64_t ns = 0;
      if (ReadSmallFile(dir + "/schedstat", &text) &&
          absl::SimpleAtoi(text.substr(0, text.find(' ')), &ns)) {
        s.runtime_ns = ns;
      } else {
        s.runtime_ns = st->cpu_ticks * tick_ns_;
      }
      any = true;
      return true;
    });
    return !*cut;
  });
  if (!any) return absl::UnavailableError("cpu: no thread readable under /proc");
  return absl::OkStatus();
}

void CpuCollector::ReadHost(CpuInterval* iv) {
  std::string text;
  std::ifstream f("/proc/stat");
  std::getline(f, text);
  uint64_t busy = 0, total = 0;
  if (!ParseProcStatCpu(text, &busy, &total).ok()) return;
  if (last_total_ticks_ != 0 && total >= last_total_ticks_ && busy >= last_busy_ticks_) {
    iv->host_busy_ns = (busy - last_busy_ticks_) * tick_ns_;
    iv->host_total_ns = (total - last_total_ticks_) * tick_ns_;
  }
  last_busy_ticks_ = busy;
  last_total_ticks_ = total;
  iv->host_cpus = static_cast<uint32_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

CpuInterval CpuCollector::Collect() {
  TaskPass pass;
  bool cut = false;
  const absl::Time t0 = absl::Now();
  absl::Status s = skel_ ? PassBpf(&pass, &cut) : PassProc(&pass, &cut);
  const absl::Duration took = absl::Now() - t0;
  CpuInterval iv;
  if (!s.ok()) {
    // No pass, no deltas: the next good pass measures from the last good one.
    fprintf(stderr, "vigild: %s (counted as read_failed)\n", std::string(s.message()).c_str());
    iv.loss.read_failed = 1;
  } else {
    iv = deltas_.Next(pass, config_.max_threads, config_.max_processes);
    if (cut) iv.loss.passes_cut = 1;
  }
  iv.pass_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(took));
  iv.from_proc = !skel_;
  ReadHost(&iv);
  return iv;
}

}  // namespace vigil
