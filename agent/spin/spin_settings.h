// The spin detector's settings by name, for vigild's flags (main.cc) and
// config file: one function so both accept the same keys and values. Keys:
// spin, spin-cpu-threshold, spin-min-duration, spin-ignore-comm,
// spin-ignore-cgroup, on-alert, on-alert-timeout.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/spin/spin_config.h"

namespace vigil {

struct SpinSettingInfo {
  const char* name;  // flag name without "--", and config key
  const char* help;
};

const std::vector<SpinSettingInfo>& SpinSettings();
bool IsSpinSetting(absl::string_view key);
// INVALID_ARGUMENT naming the key and the bad value.
absl::Status ApplySpinSetting(absl::string_view key, absl::string_view value, SpinConfig* c);

}  // namespace vigil
