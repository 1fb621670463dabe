#include "agent/spin/spin_settings.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/duration.h"
#include "re2/re2.h"

namespace vigil {
namespace {

absl::Status Bad(absl::string_view key, absl::string_view value, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(key, " \"", value, "\": expected ", want));
}

absl::Status Regex(absl::string_view key, absl::string_view value, std::string* out) {
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(std::string(value), o);
  if (!re.ok()) return Bad(key, value, absl::StrCat("an RE2 regex (", re.error(), ")"));
  *out = std::string(value);
  return absl::OkStatus();
}

absl::Status Duration(absl::string_view key, absl::string_view value, absl::Duration* out) {
  // A year bounds every duration setting: no overflow in later arithmetic.
  absl::StatusOr<absl::Duration> d =
      ParseBoundedDuration(value, absl::Nanoseconds(1), absl::Hours(24 * 365), key);
  if (!d.ok()) return d.status();
  *out = *d;
  return absl::OkStatus();
}

}  // namespace

const std::vector<SpinSettingInfo>& SpinSettings() {
  static const auto* all = new std::vector<SpinSettingInfo>{
      {"spin", "on|off: spin alerts, threads on CPU without syscalls (default on)"},
      {"spin-cpu-threshold",
       "on-CPU share of one CPU that counts as spinning, (0,1] (default 0.9)"},
      {"spin-min-duration", "how long a thread must spin before the alert fires (default 30s)"},
      {"spin-ignore-comm", "RE2 regex: thread or process names that never alert"},
      {"spin-ignore-cgroup", "RE2 regex: cgroup paths whose threads never alert"},
  };
  return *all;
}

bool IsSpinSetting(absl::string_view key) {
  for (const SpinSettingInfo& s : SpinSettings()) {
    if (key == s.name) return true;
  }
  return false;
}

absl::Status ApplySpinSetting(absl::string_view key, absl::string_view value, SpinConfig* c) {
  if (key == "spin") {
    if (value != "on" && value != "off") return Bad(key, value, "on or off");
    c->enabled = value == "on";
    return absl::OkStatus();
  }
  if (key == "spin-cpu-threshold") {
    double v = 0;
    if (!absl::SimpleAtod(value, &v) || !(v > 0 && v <= 1)) {
      return Bad(key, value, "a fraction of one CPU in (0, 1], like 0.9");
    }
    c->cpu_threshold = v;
    return absl::OkStatus();
  }
  if (key == "spin-min-duration") return Duration(key, value, &c->min_duration);
  if (key == "spin-ignore-comm") return Regex(key, value, &c->ignore_comm);
  if (key == "spin-ignore-cgroup") return Regex(key, value, &c->ignore_cgroup);
  return absl::InvalidArgumentError(absl::StrCat("unknown key \"", key, "\""));
}

}  // namespace vigil
