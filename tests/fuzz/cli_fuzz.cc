// libFuzzer target: the client's command line and the duration parser both
// vigil and vigild use. The input is split into argv on NUL and newline
// bytes (at most kMaxArgs), after "vigil", and parsed as `vigil` would
// (Cli::Parse: CLI11, every command's flags and Check; nothing is run).
// Properties: no crash and no exception escapes; when parsing decides, the
// exit code is 0 (help, version) or 2 (bad usage) and bad usage is one line;
// a parsed --timeout lies in its bounds. Then the first two bytes pick
// bounds and the rest is a duration for ParseBoundedDuration: accepted
// means within [min, max]; refused means one INVALID_ARGUMENT line.
// Built and run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/runner.h"
#include "common/duration.h"

namespace {

constexpr size_t kMaxArgs = 64;
constexpr size_t kMaxMessage = 512;

[[noreturn]] void Fail(const char* what, absl::string_view detail) {
  fprintf(stderr, "%s: %.600s\n", what, std::string(detail).c_str());
  __builtin_trap();
}

void FuzzCli(absl::string_view text) {
  std::vector<std::string> args = {"vigil"};
  size_t start = 0;
  for (size_t i = 0; i <= text.size() && args.size() < kMaxArgs; ++i) {
    if (i == text.size() || text[i] == '\0' || text[i] == '\n') {
      args.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  vigil::cli::Cli cli;
  std::string out, err;
  const std::optional<int> rc = cli.Parse(args, &out, &err);
  if (!rc.has_value()) {
    // Parsed: a command was chosen and its flags agree.
    if (cli.command().empty()) Fail("parsed without a command", text);
    const absl::Duration t = cli.global().conn.timeout;
    if (t <= absl::ZeroDuration() || t > absl::Hours(1)) Fail("timeout out of bounds", text);
    return;
  }
  if (*rc != vigil::cli::kExitOk && *rc != vigil::cli::kExitUsage) Fail("exit code", text);
  if (*rc == vigil::cli::kExitUsage && args.size() >= 2) {
    // One line, newline-terminated, on stderr; nothing on stdout.
    if (err.empty() || err.back() != '\n' || err.find('\n') != err.size() - 1) {
      Fail("usage error is not one line", err);
    }
    if (!out.empty()) Fail("usage error printed to stdout", out);
  }
}

void FuzzDuration(const uint8_t* data, size_t size) {
  if (size < 2) return;
  static const absl::Duration kMins[] = {absl::ZeroDuration(), absl::Nanoseconds(1),
                                         absl::Milliseconds(100), absl::Seconds(1),
                                         -absl::Hours(1)};
  static const absl::Duration kMaxes[] = {absl::Seconds(1),      absl::Hours(1),
                                          absl::Hours(24),       absl::Hours(24 * 30),
                                          absl::Hours(24 * 365), absl::Nanoseconds(1)};
  const absl::Duration min = kMins[data[0] % (sizeof(kMins) / sizeof(kMins[0]))];
  const absl::Duration max = kMaxes[data[1] % (sizeof(kMaxes) / sizeof(kMaxes[0]))];
  const absl::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const absl::StatusOr<absl::Duration> d = vigil::ParseBoundedDuration(text, min, max, "--since");
  if (d.ok()) {
    if (*d < min || *d > max) Fail("accepted out of bounds", text);
    return;
  }
  const absl::string_view m = d.status().message();
  if (d.status().code() != absl::StatusCode::kInvalidArgument || m.empty() ||
      m.find('\n') != absl::string_view::npos || m.size() > kMaxMessage) {
    Fail("duration error is not one bounded INVALID_ARGUMENT line", m);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzCli(absl::string_view(reinterpret_cast<const char*>(data), size));
  FuzzDuration(data, size);
  return 0;
}
