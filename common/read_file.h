// Bounded reads of files the agent does not control: /proc and /sys files
// whose size another user decides (a process's memory map, mountinfo with
// a container runtime's thousands of mounts).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace vigil {

// Reads at most max_bytes of `path` into *out. False when it cannot be
// opened or read. *truncated (if given) says whether the file had more.
bool ReadFileBounded(const std::string& path, size_t max_bytes, std::string* out,
                     bool* truncated = nullptr);

// The whole of a file a flag names (TLS certificates and keys, which the
// operator provides): INVALID_ARGUMENT "FLAG PATH: cannot read" when it
// cannot be opened. vigild's listeners and the CLI read theirs with it.
absl::StatusOr<std::string> ReadFlagFile(const std::string& path, const char* flag);

// Drops a partial last line (everything after the last '\n'): what a
// truncated read of a line-oriented file leaves behind, and which would
// parse as a line that is not there.
void DropPartialLine(std::string* text);

}  // namespace vigil
