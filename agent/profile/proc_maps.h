// The symbolizer's /proc parsers as pure functions, so unit tests and
// tests/fuzz/proc_fuzz drive them with any text: /proc/PID/maps names files
// other users chose (spaces, " (deleted)", anything but '\n', which the
// kernel escapes), and /proc/PID/stat carries a thread name other users set
// (spaces, parentheses, newlines: any byte but NUL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace vigil {

// One executable, file-backed line of /proc/PID/maps, as the symbolizer
// keeps it.
struct FileMapping {
  uint64_t start = 0, end = 0, offset = 0;
  uint64_t dev = 0;  // major << 32 | minor
  uint64_t ino = 0;
  std::string path;
};

// The executable mappings that name something (a file, "[vdso]"); lines
// that do not parse, are not executable or are anonymous are skipped.
std::vector<FileMapping> ParseFileMappings(absl::string_view maps);

// Field 22 of /proc/PID/stat (starttime, clock ticks after boot), which
// tells a reused pid from the process first seen; nullopt if the text has
// no such field. The name (field 2) may hold anything but NUL, so fields
// are counted after its last ')'.
std::optional<uint64_t> ParseStatStartTime(absl::string_view stat);

}  // namespace vigil
