// Short lower-case names of vigil.v1 state enums for logs and tables
// ("running", "firing"); --json prints the enums' own names.
#pragma once

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

namespace internal {
inline std::string AfterPrefix(const std::string& name, absl::string_view prefix) {
  absl::string_view v(name);
  if (absl::ConsumePrefix(&v, prefix)) return absl::AsciiStrToLower(v);
  return "unknown";
}
}  // namespace internal

// "running", "degraded", "off".
inline std::string StateName(v1::CapabilityState s) {
  return internal::AfterPrefix(v1::CapabilityState_Name(s), "CAPABILITY_STATE_");
}
// "firing", "resolved".
inline std::string StateName(v1::AlertState s) {
  return internal::AfterPrefix(v1::AlertState_Name(s), "ALERT_STATE_");
}

}  // namespace vigil
