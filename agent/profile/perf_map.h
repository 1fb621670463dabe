// /tmp/perf-PID.map: the symbols a JIT (V8, the JVM with perf-map-agent,
// LuaJIT, ...) writes for its anonymous code, one "START SIZE NAME" line
// each, hex. The file is written by the traced process, so any local user
// controls it: the parser bounds symbols, line and name lengths, and skips
// what does not parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace vigil {

struct PerfMapSymbol {
  uint64_t start = 0;
  uint64_t size = 0;
  std::string name;
};

struct PerfMapLimits {
  size_t max_symbols = 1000000;
  size_t max_name = 1024;  // longer names are cut
};

// The symbols of a perf map's text, sorted by start. Lines that do not
// parse, and symbols that wrap around the address space, are skipped.
std::vector<PerfMapSymbol> ParsePerfMap(absl::string_view text, const PerfMapLimits& limits);

// Reads at most max_bytes of the regular file at `path` into *out without
// blocking on a FIFO or following a final symlink's device; false if it is
// not a readable regular file.
bool ReadPerfMapFile(const std::string& path, size_t max_bytes, std::string* out);

}  // namespace vigil
