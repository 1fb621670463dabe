// libFuzzer target: vigild's configuration, as `vigild --check-config` reads
// it. The whole input is a config file (ApplyConfigText: "key = value"
// lines, every key's value parser), then the cross-field checks
// (ValidateConfig); and, split at the first NUL, a key and a value as a
// command-line flag hands them to ApplySetting (a flag's value may hold
// newlines and any byte). A root-owned file, but written by hand and by
// config management: every input ends in OK or one line naming what is
// wrong, no longer than kMaxMessage. Built and run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/config.h"
#include "agent/settings.h"

namespace {

// A path, a line number and a key, then the value quoted and cut: messages
// stay well under this whatever the input.
constexpr size_t kMaxMessage = 512;

void CheckError(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    fprintf(stderr, "%s: code %d\n", what, static_cast<int>(s.code()));
    __builtin_trap();
  }
  const absl::string_view m = s.message();
  if (m.empty() || m.find('\n') != absl::string_view::npos || m.size() > kMaxMessage) {
    fprintf(stderr, "%s: not one bounded line (%zu bytes): %.600s\n", what, m.size(),
            std::string(m).c_str());
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  {
    vigil::AgentConfig c;
    const absl::Status s = vigil::ApplyConfigText(text, "/etc/vigil/vigild.conf", &c);
    CheckError(s, "ApplyConfigText");
    if (s.ok()) CheckError(vigil::ValidateConfig(c), "ValidateConfig");
  }
  const size_t nul = text.find('\0');
  if (nul != absl::string_view::npos) {
    vigil::AgentConfig c;
    CheckError(vigil::ApplySetting(text.substr(0, nul), text.substr(nul + 1), &c), "ApplySetting");
    CheckError(vigil::ValidateConfig(c), "ValidateConfig(flag)");
  }
  return 0;
}
