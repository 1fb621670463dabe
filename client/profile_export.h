// Turning a ProfileResponse into files: pprof (gzipped profile.proto),
// folded stacks, and a self-contained interactive flame graph. Pure
// functions, unit-tested without an agent.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/pprof.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

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
