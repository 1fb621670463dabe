// vigild's settings by name: one table shared by the command-line flags and
// the config file (/etc/vigil/vigild.conf), so both accept exactly the same
// keys and values and report errors the same way.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/config.h"

namespace vigil {

inline constexpr char kDefaultConfigPath[] = "/etc/vigil/vigild.conf";

struct SettingInfo {
  const char* name;  // flag name without "--", and config key
  bool takes_value;  // false: a boolean switch (in the file: true/false)
  const char* help;
  // Checks the value and stores it; INVALID_ARGUMENT names the key and the
  // value, and then the config is unchanged.
  absl::Status (*apply)(absl::string_view key, absl::string_view value, AgentConfig* config);
};

// Every setting, in help order.
const std::vector<SettingInfo>& AllSettings();

// Applies one setting. INVALID_ARGUMENT names the key and the bad value.
absl::Status ApplySetting(absl::string_view key, absl::string_view value, AgentConfig* config);

// Parses config file text: "key = value" lines, '#' comments, blank lines.
// Applies each setting in order; errors are "PATH:LINE: message".
absl::Status ApplyConfigText(absl::string_view text, absl::string_view path, AgentConfig* config);

// Cross-field checks (window vs interval, TLS completeness, listen address).
absl::Status ValidateConfig(const AgentConfig& config);

}  // namespace vigil
