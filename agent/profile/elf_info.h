// What the symbolizer needs to know about an ELF file before it looks for
// symbols elsewhere: its build-id, whether it still has a .symtab, its
// .gnu_debuglink, and its MiniDebugInfo (.gnu_debugdata). The agent runs as
// root and reads files other users control, so every read here is bounded
// and every offset checked against the file's size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace vigil {

struct ElfInfo {
  std::string build_id;           // NT_GNU_BUILD_ID's bytes (raw, not hex); empty if none
  bool has_symtab = false;        // a SHT_SYMTAB section (not stripped)
  std::string debuglink;          // .gnu_debuglink's file name; empty if none
  uint64_t debugdata_offset = 0;  // .gnu_debugdata (xz), in the file
  uint64_t debugdata_size = 0;    // 0: none
};

// Reads the headers of the open ELF file `fd` (pread only; the file offset is
// untouched). Only the host's byte order is accepted (a process on this host
// runs only such code). Reads at most a few hundred KiB whatever the headers
// claim.
absl::StatusOr<ElfInfo> ReadElfInfo(int fd);

// Lower-case hex of a build-id's bytes.
std::string BuildIdHex(absl::string_view build_id);

using ElfSymbolFn = std::function<void(const char* name, uint64_t start, uint64_t size)>;

// MiniDebugInfo: decompresses `xz` (an xz stream holding an ELF file) into at
// most max_bytes and calls fn for each function symbol (STT_FUNC and
// STT_GNU_IFUNC, defined, non-zero address) of its .symtab. Returns the
// number of symbols. Fails, never crashes, on a corrupt or truncated stream,
// one that inflates past max_bytes, or an ELF image that is not one.
absl::StatusOr<size_t> ParseMiniDebugInfo(absl::string_view xz, size_t max_bytes,
                                          const ElfSymbolFn& fn);

// Reads .gnu_debugdata of `fd` (located by ReadElfInfo; at most
// max_compressed bytes) and parses it as above.
absl::StatusOr<size_t> ReadMiniDebugInfo(int fd, const ElfInfo& info, size_t max_compressed,
                                         size_t max_bytes, const ElfSymbolFn& fn);

}  // namespace vigil
