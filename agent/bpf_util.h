// Shared libbpf plumbing: ownership of kernel objects, log routing, and
// errno -> absl::Status with the object and operation named.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vigil {

// Skeletons own every program, map and link they create; destroy() detaches
// and closes them all. One owner, move-only.
template <typename Skel>
struct SkelDeleter {
  void operator()(Skel* s) const { Skel::destroy(s); }
};
template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

// libbpf prints to stderr by default. With verbose, everything goes to
// stderr; otherwise warnings are kept for error messages, but only while a
// LibbpfLogCapture on the printing thread is alive (others are dropped).
void ConfigureLibbpfLogging(bool verbose);

struct LibbpfLogSink;

// Captures the libbpf warnings printed on this thread while it lives (the
// last few lines), so that a capability's load error names that load's
// warnings only, never another capability's. Open one before a skeleton's
// open/load/attach:
//   LibbpfLogCapture libbpf_log;
//   if (int err = x_bpf::load(skel)) return libbpf_log.Annotate(ErrnoStatus(err, "loading x"));
// Captures nest: the innermost one on the thread gets the lines.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // This capture's warning lines so far, joined by "; " (may be empty).
  std::string Warnings() const;
  // s with " [libbpf: <Warnings()>]" appended to its message, if any.
  absl::Status Annotate(absl::Status s) const;

 private:
  std::unique_ptr<LibbpfLogSink> sink_;
};

// Maps an errno from a libbpf call to a Status naming what failed, e.g.
// ErrnoStatus(EPERM, "loading syscalls.bpf.o").
absl::Status ErrnoStatus(int err, absl::string_view what);

// Sums each of the first n entries of a BPF_MAP_TYPE_PERCPU_ARRAY of u64
// over every possible CPU (the loss counters every capability keeps).
// `what` names the map in errors, e.g. "syscalls: reading counters".
absl::StatusOr<std::vector<uint64_t>> SumPerCpuCounters(int map_fd, uint32_t n,
                                                        absl::string_view what);

}  // namespace vigil
