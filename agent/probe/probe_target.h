// What a `vigil probe` target names, resolved against one running process:
// the ELF file (the executable, a mapped library, or a path) and the
// functions in it, or one USDT probe. The agent runs as root and reads files
// other users control, so symbol reads are bounded; files are opened through
// /proc/PID/root so a process in a container is probed in its own files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/profile/proc_maps.h"

namespace vigil {

// The target text, split: "FUNCTION", "LIB:FUNCTION" or
// "usdt:LIB:PROVIDER:NAME". FUNCTION may be a glob (fnmatch: * ? [..]).
struct ProbeSpec {
  bool usdt = false;
  std::string lib;              // empty: the main executable
  std::string function;         // name or glob (not usdt)
  std::string provider, probe;  // usdt only
  bool glob() const;
};
// INVALID_ARGUMENT with one line saying what is wrong.
absl::StatusOr<ProbeSpec> ParseProbeSpec(absl::string_view target);

struct ElfFunction {
  std::string name;          // demangled when C++
  uint64_t address = 0;      // st_value
  uint64_t file_offset = 0;  // where the uprobe goes
};

// The function symbols (STT_FUNC/STT_GNU_IFUNC, defined, non-zero size) of
// .symtab and .dynsym whose name (mangled or demangled) matches `pattern`
// (exact, or fnmatch when glob), one per address, in address order. At most
// `max_symbols` symbol entries are read. INVALID_ARGUMENT "PATH is not an
// ELF file" when it is not one.
absl::StatusOr<std::vector<ElfFunction>> FindElfFunctions(const std::string& path,
                                                          const std::string& pattern, bool glob,
                                                          size_t max_symbols = 4u << 20);

// Which mapped file LIB names among `maps`: a path (exact), or a name
// matched against basenames ("libc" matches libc.so.6 and libc-2.31.so,
// "libc.so.6" only itself). NOT_FOUND when none, INVALID_ARGUMENT when
// several different files match.
absl::StatusOr<std::string> MatchLibrary(const std::vector<FileMapping>& maps,
                                         absl::string_view lib);

struct ProbeTarget {
  ProbeSpec spec;
  std::string binary;                  // as the process sees it ("/usr/lib/.../libc.so.6")
  std::string open_path;               // as the agent opens it: /proc/PID/root/<binary>
  std::vector<ElfFunction> functions;  // uprobes; empty for usdt
};

// Resolves `target` in process `pid`. INVALID_ARGUMENT for a process that
// does not exist, a library it does not map, a symbol not found, a glob
// matching more than max_functions (saying how many), a non-ELF file.
absl::StatusOr<ProbeTarget> ResolveProbeTarget(uint32_t pid, absl::string_view target,
                                               uint32_t max_functions);

}  // namespace vigil
