// Turning a ProfileResponse into files: pprof (gzipped profile.proto),
// folded stacks, and a self-contained interactive flame graph. Pure
// functions, unit-tested without an agent.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "perftools/profile.pb.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

// The frame's display name: its function, or "module+0xoffset".
std::string FrameName(const v1::ProfileFrame& f);

// "123 B", "4.0 KiB", "1.5 GiB".
std::string HumanBytes(uint64_t bytes);

// The pprof message (not yet serialized or compressed). A CPU profile has
// sample types samples/count and cpu/nanoseconds; a memory profile
// (PROFILE_KIND_MEMORY) faults/count and fault_bytes/bytes.
perftools::profiles::Profile ToPprof(const v1::ProfileResponse& r);

// gzip (RFC 1952) of `data`.
absl::StatusOr<std::string> Gzip(const std::string& data);

// "root;...;leaf count" lines, identical stacks of different threads summed,
// sorted by stack text.
std::string ToFolded(const v1::ProfileResponse& r);

// A flame graph: `svg` true gives a standalone SVG document, false an HTML
// page embedding it. Hover shows a frame's name, module and share (and for
// a memory profile its bytes); click zooms into a frame; clicking the root
// frame resets.
std::string ToFlameGraph(const v1::ProfileResponse& r, const std::string& title, bool svg);

// The `vigil hot` table.
std::string FormatHot(const v1::HotResponse& r);

}  // namespace vigil::cli
