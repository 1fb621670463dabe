#include "agent/profile/frame.h"

#include "absl/strings/str_format.h"

namespace vigil {

// Here rather than in symbolizer.cc: the merges (profile_aggregate.cc) name
// frames too, and tests/fuzz links them without the symbolizer's bcc.
std::string Frame::DisplayName() const {
  if (!name.empty()) return name;
  return absl::StrFormat("%s+0x%x", module, offset);
}

}  // namespace vigil
