#include "agent/spin/spin_signal.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/read_file.h"

namespace vigil {
namespace {

bool ReadSmallFile(const std::string& path, std::string* out, size_t max = 4096) {
  return ReadFileBounded(path, max, out);
}

class RealProcReader final : public ProcReader {
 public:
  explicit RealProcReader(std::string root) : root_(std::move(root)) {}

  bool ReadThread(uint32_t pid, uint32_t tid, ThreadCounters* out) override {
    const std::string dir = absl::StrCat(root_, "/", pid, "/task/", tid);
    std::string text;
    if (!ReadSmallFile(dir + "/schedstat", &text)) return false;
    std::vector<absl::string_view> f = absl::StrSplit(text, ' ', absl::SkipWhitespace());
    if (f.empty() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(f[0]), &out->oncpu_ns))
      return false;
    if (!ReadSmallFile(dir + "/status", &text, 8192)) return false;
    const size_t at = text.find("\nvoluntary_ctxt_switches:");
    if (at == std::string::npos) return false;
    const size_t eol = text.find('\n', at + 1);
    absl::string_view v = absl::string_view(text).substr(at + 25, eol - (at + 25));
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &out->voluntary_switches);
  }

  std::string Cgroup(uint32_t pid) override {
    std::string text;
    if (!ReadSmallFile(absl::StrCat(root_, "/", pid, "/cgroup"), &text)) return "";
    // cgroup v2: "0::/path"; on a hybrid host prefer that line.
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "0::")) return std::string(line.substr(3));
    }
    return "";
  }

  std::string Cmdline(uint32_t pid) override {
    std::string text;
    if (!ReadSmallFile(absl::StrCat(root_, "/", pid, "/cmdline"), &text)) return "";
    while (!text.empty() && text.back() == '\0') text.pop_back();
    std::replace(text.begin(), text.end(), '\0', ' ');
    return text;
  }

 private:
  const std::string root_;
};

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<ProcReader> NewProcReader(std::string root) {
  return std::make_unique<RealProcReader>(std::move(root));
}

std::string ContainerIdFromCgroup(const std::string& cgroup) {
  for (absl::string_view part : absl::StrSplit(cgroup, '/', absl::SkipEmpty())) {
    absl::ConsumeSuffix(&part, ".scope");
    if (part.size() >= 64 && IsHex64(part.substr(part.size() - 64))) {
      return std::string(part.substr(part.size() - 64));
    }
  }
  return "";
}

std::vector<SpinObservation> SpinSignal::Build(absl::Time start, absl::Time end,
                                               const ProfileInterval& prof,
                                               const SyscallInterval* sys,
                                               const SpinDetector& detector) {
  struct Seen {
    uint32_t pid = 0;
    uint64_t samples = 0, kernel_samples = 0;
    const char* comm = nullptr;
    const char* pcomm = nullptr;
  };
  absl::flat_hash_map<uint32_t, Seen> by_tid;
  for (const ProfileStackRecord& r : prof.stacks) {
    if (r.tid == 0) continue;                  // idle
    if (r.kind != PROFILE_KIND_CPU) continue;  // page faults are not CPU time
    Seen& s = by_tid[r.tid];
    s.pid = r.tgid;
    s.samples += r.samples;
    if (r.kernel_frames > 0) s.kernel_samples += r.samples;
    s.comm = r.comm;
    s.pcomm = r.pcomm;
  }
  const double wall_s = absl::ToDoubleSeconds(end - start);
  // Half the samples a thread at the threshold would get: sampling noise
  // must not hide a real spinner, and /proc is read only for candidates.
  const uint64_t min_samples = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(0.5 * config_.cpu_threshold * sample_hz_ * wall_s)));

  absl::flat_hash_map<uint32_t, uint32_t> candidates;  // tid -> pid
  for (const auto& [pid, tid] : detector.Tracked()) candidates[tid] = pid;
  for (const auto& [tid, s] : by_tid) {
    if (s.samples >= min_samples) candidates.emplace(tid, s.pid);
  }
  absl::flat_hash_map<uint32_t, uint64_t> syscalls;
  if (sys != nullptr) {
    for (const SyscallRecord& r : sys->records) {
      if (candidates.contains(r.tid)) syscalls[r.tid] += r.calls;
    }
  }
  const bool known = sys != nullptr && sys->loss.map_full == 0;

  std::vector<SpinObservation> out;
  absl::flat_hash_map<uint32_t, Baseline> next;
  const uint64_t wall_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(end - start));
  for (const auto& [tid, pid] : candidates) {
    ThreadCounters now;
    if (!proc_->ReadThread(pid, tid, &now)) continue;  // exited
    SpinObservation o;
    o.pid = pid;
    o.tid = tid;
    auto seen = by_tid.find(tid);
    if (seen != by_tid.end()) {
      o.comm = seen->second.comm;
      o.pcomm = seen->second.pcomm;
      o.in_kernel = seen->second.kernel_samples * 2 > seen->second.samples;
    }
    auto base = baselines_.find(tid);
    Baseline b;
    b.counters = now;
    if (base != baselines_.end()) {
      o.oncpu_ns = now.oncpu_ns - std::min(now.oncpu_ns, base->second.counters.oncpu_ns);
      o.voluntary_switches =
          now.voluntary_switches -
          std::min(now.voluntary_switches, base->second.counters.voluntary_switches);
      b.cgroup = base->second.cgroup;
    } else {
      // First sight: estimate from samples; the next interval is exact.
      const uint64_t samples = seen != by_tid.end() ? seen->second.samples : 0;
      o.oncpu_ns = std::min<uint64_t>(wall_ns, samples * 1000000000ull / std::max(1u, sample_hz_));
      b.cgroup = proc_->Cgroup(pid);
    }
    o.cgroup = b.cgroup;
    auto sc = syscalls.find(tid);
    o.syscalls = sc == syscalls.end() ? 0 : sc->second;
    o.known = known;
    next.emplace(tid, std::move(b));
    out.push_back(std::move(o));
  }
  baselines_ = std::move(next);
  return out;
}

}  // namespace vigil
