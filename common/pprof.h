// A ProfileResponse as pprof's profile.proto (gzipped on the wire), for
// `vigil profile --format pprof` and the agent's /debug/pprof endpoints.
// Pure functions, unit-tested without an agent.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "perftools/profile.pb.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

// The frame's display name: its function, or "module+0xoffset".
std::string FrameName(const v1::ProfileFrame& f);

// Bytes of newly touched memory behind `samples` page-fault samples: one
// 4 KiB page per fault (agent/profile/profile_aggregate.h kFaultBytes).
uint64_t FaultBytes(const v1::ProfileResponse& r, uint64_t samples);

// The pprof message (not yet serialized or compressed). A CPU profile has
// sample types samples/count and cpu/nanoseconds; a memory profile
// (PROFILE_KIND_MEMORY) faults/count and fault_bytes/bytes. Every sample
// carries the labels pid and tid (numbers), comm and process_comm (strings),
// which Parca and Pyroscope turn into series labels.
perftools::profiles::Profile ToPprof(const v1::ProfileResponse& r);

// gzip (RFC 1952) of `data`.
absl::StatusOr<std::string> Gzip(const std::string& data);

}  // namespace vigil
