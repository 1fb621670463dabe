#include "agent/bpf_util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace vigil {
namespace {

constexpr size_t kKeptWarnings = 4;

// libbpf's print callback is process-global by design, so its sink is too.
std::mutex g_log_mu;
std::deque<std::string>* g_recent = new std::deque<std::string>();

int QuietPrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level != LIBBPF_WARN) return 0;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(absl::StripTrailingAsciiWhitespace(buf));
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_recent->push_back(std::move(line));
  while (g_recent->size() > kKeptWarnings) g_recent->pop_front();
  return 0;
}

int VerbosePrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  return vfprintf(stderr, fmt, ap);
}

}  // namespace

void ConfigureLibbpfLogging(bool verbose) {
  libbpf_set_print(verbose ? VerbosePrint : QuietPrint);
}

std::string LibbpfRecentWarnings() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  return absl::StrJoin(*g_recent, "; ");
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  if (err < 0) err = -err;
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(absl::StrCat(
          msg, " (run as root or grant CAP_BPF,CAP_PERFMON)"));
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

}  // namespace vigil
