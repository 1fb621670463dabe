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
// stderr; otherwise warnings are kept (last few lines) for error messages.
void ConfigureLibbpfLogging(bool verbose);

// The last warning lines libbpf printed, joined by "; " (may be empty).
std::string LibbpfRecentWarnings();

// Maps an errno from a libbpf call to a Status naming what failed, e.g.
// ErrnoStatus(EPERM, "loading syscalls.bpf.o").
absl::Status ErrnoStatus(int err, absl::string_view what);

// Sums each of the first n entries of a BPF_MAP_TYPE_PERCPU_ARRAY of u64
// over every possible CPU (the loss counters every capability keeps).
// `what` names the map in errors, e.g. "syscalls: reading counters".
absl::StatusOr<std::vector<uint64_t>> SumPerCpuCounters(int map_fd, uint32_t n,
                                                        absl::string_view what);

}  // namespace vigil
