#include "agent/bpf_util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

constexpr size_t kKeptWarnings = 4;

// libbpf's print callback is process-global by design, so the registry of
// live captures is too.
ABSL_CONST_INIT absl::Mutex g_log_mu(absl::kConstInit);

}  // namespace

struct LibbpfLogSink {
  std::thread::id thread;
  std::deque<std::string> lines ABSL_GUARDED_BY(g_log_mu);
};

namespace {

// Live captures, oldest first (a thread's innermost capture is its last).
std::vector<LibbpfLogSink*>* const g_sinks ABSL_PT_GUARDED_BY(g_log_mu) =
    new std::vector<LibbpfLogSink*>();

int QuietPrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level != LIBBPF_WARN) return 0;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(absl::StripTrailingAsciiWhitespace(buf));
  const std::thread::id self = std::this_thread::get_id();
  absl::MutexLock lock(&g_log_mu);
  for (auto it = g_sinks->rbegin(); it != g_sinks->rend(); ++it) {
    if ((*it)->thread != self) continue;
    std::deque<std::string>& lines = (*it)->lines;
    lines.push_back(std::move(line));
    while (lines.size() > kKeptWarnings) lines.pop_front();
    break;
  }
  return 0;
}

int VerbosePrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  return vfprintf(stderr, fmt, ap);
}

}  // namespace

void ConfigureLibbpfLogging(bool verbose) { libbpf_set_print(verbose ? VerbosePrint : QuietPrint); }

LibbpfLogCapture::LibbpfLogCapture() : sink_(new LibbpfLogSink) {
  sink_->thread = std::this_thread::get_id();
  absl::MutexLock lock(&g_log_mu);
  g_sinks->push_back(sink_.get());
}

LibbpfLogCapture::~LibbpfLogCapture() {
  absl::MutexLock lock(&g_log_mu);
  for (auto it = g_sinks->begin(); it != g_sinks->end(); ++it) {
    if (*it == sink_.get()) {
      g_sinks->erase(it);
      break;
    }
  }
}

std::string LibbpfLogCapture::Warnings() const {
  absl::MutexLock lock(&g_log_mu);
  return absl::StrJoin(sink_->lines, "; ");
}

absl::Status LibbpfLogCapture::Annotate(absl::Status s) const {
  std::string hint = Warnings();
  if (hint.empty() || s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(), " [libbpf: ", hint, "]"));
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  if (err < 0) err = -err;
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(msg, " (run as root or grant CAP_BPF,CAP_PERFMON)"));
    case ENOENT:
    case EOPNOTSUPP:
    case EINVAL:
      return absl::FailedPreconditionError(msg);
    case ENOMEM:
    case E2BIG:
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::vector<uint64_t>> SumPerCpuCounters(int map_fd, uint32_t n,
                                                        absl::string_view what) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, absl::StrCat(what, ": counting possible CPUs"));
  std::vector<uint64_t> per_cpu(ncpu);
  std::vector<uint64_t> sums(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data())) return ErrnoStatus(errno, what);
    for (uint64_t v : per_cpu) sums[i] += v;
  }
  return sums;
}

absl::StatusOr<int> DoubleBuffer::Swap(absl::string_view what) {
  const int next = 1 - active_;
  const uint32_t key = 0;
  const int next_fd = bpf_map__fd(bufs_[next]);
  if (bpf_map_update_elem(bpf_map__fd(slot_), &key, &next_fd, BPF_ANY)) {
    return ErrnoStatus(errno, what);
  }
  const int retired = active_;
  active_ = next;
  return bpf_map__fd(bufs_[retired]);
}

int DoubleBuffer::active_fd() const { return bpf_map__fd(bufs_[active_]); }

void LogDrainFailure(const absl::Status& s, uint64_t lost) {
  if (s.ok()) return;
  fprintf(stderr, "vigild: %s; %lu entries lost (counted as drain_failed)\n",
          std::string(s.message()).c_str(), static_cast<unsigned long>(lost));
}

absl::Status ReadIterRecords(bpf_link* link, size_t record_size, size_t max_records,
                             std::vector<char>* buf, absl::string_view what, bool* cut,
                             const std::function<void(const char* record)>& each) {
  *cut = false;
  UniqueFd fd(bpf_iter_create(bpf_link__fd(link)));
  if (fd.get() < 0) return ErrnoStatus(errno, absl::StrCat(what, ": creating the iterator"));
  // A read returns whole records (the seq_file never splits a
  // bpf_seq_write); 1024 per read keeps the syscalls few.
  buf->resize(record_size * 1024);
  size_t records = 0;
  for (int retries = 0;;) {
    const ssize_t n = read(fd.get(), buf->data(), buf->size());
    if (n < 0) {
      if ((errno == EAGAIN || errno == EINTR) && ++retries < 16) continue;
      return ErrnoStatus(errno, absl::StrCat(what, ": reading the iterator"));
    }
    if (n == 0) return absl::OkStatus();
    for (size_t off = 0; off + record_size <= static_cast<size_t>(n); off += record_size) {
      each(buf->data() + off);
      ++records;
    }
    if (records > max_records) {
      *cut = true;
      return absl::OkStatus();
    }
  }
}

std::vector<uint32_t> LoadedProgramIds(std::initializer_list<const bpf_program*> progs) {
  std::vector<uint32_t> ids;
  for (const bpf_program* p : progs) {
    const int fd = bpf_program__fd(p);
    if (fd < 0) continue;
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) ids.push_back(info.id);
  }
  return ids;
}

uint64_t DeleteRemaining(int map_fd, uint32_t key_size, uint32_t max_entries) {
  std::vector<unsigned char> key(key_size);
  uint64_t n = 0;
  // Always the first key: deleting it makes the next one first. Bounded, so
  // a map that keeps refusing deletes cannot hold the loop.
  for (uint32_t i = 0; i < max_entries; ++i) {
    if (bpf_map_get_next_key(map_fd, nullptr, key.data()) != 0) break;
    if (bpf_map_delete_elem(map_fd, key.data()) != 0) break;
    ++n;
  }
  return n;
}

}  // namespace vigil
