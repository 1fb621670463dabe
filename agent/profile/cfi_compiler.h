// Compiles an ELF file's call-frame information (.eh_frame, found through
// PT_GNU_EH_FRAME, and .debug_frame where the file carries one: functions
// built without unwind tables are described only there) into the compact
// rows bpf/profile.bpf.c walks stacks with (bpf/unwind.h). elfutils' CFI
// interpreter executes the DWARF programs; this file only enumerates address
// ranges and maps each rule onto what the kernel-side walker can follow, so
// the walker stays small and verifiable.
//
// Input is any file a local user can write (the agent maps what processes
// map): every count is bounded, and a malformed file yields an error or
// fewer rows, never a crash or an unbounded loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bpf/unwind.h"

typedef struct Elf Elf;

namespace vigil {

struct CfiLimits {
  // Rows one file may compile to; a bigger file is refused (and unwound
  // with frame pointers), not cut.
  uint32_t max_rows = VIGIL_UNWIND_MAX_FILE_ROWS;
  // CPU time one file may take: CFI is a program, and a hostile one can be
  // made slow to interpret.
  absl::Duration max_time = absl::Seconds(2);
};

// A loadable segment, to turn a mapping's file offset into ELF addresses.
struct LoadSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool exec = false;
};

struct CompiledCfi {
  std::vector<unwind_row> rows;  // sorted by pc, adjacent duplicates merged
  std::vector<LoadSegment> segments;
  uint64_t fdes = 0;              // function ranges walked
  uint64_t debug_frame_fdes = 0;  // of which described by .debug_frame
  uint64_t unsupported = 0;       // rows whose rule the walker cannot follow
};

// The loadable segments alone (every mapped file needs them, CFI or not).
absl::StatusOr<std::vector<LoadSegment>> ReadLoadSegments(Elf* elf);

// NOT_FOUND: neither .eh_frame_hdr nor .debug_frame (the caller falls back
// to frame pointers).
// FAILED_PRECONDITION: not an x86-64 ELF, or more rows than the limit.
absl::StatusOr<CompiledCfi> CompileCfi(Elf* elf, const CfiLimits& limits);
absl::StatusOr<CompiledCfi> CompileCfiFromFd(int fd, const CfiLimits& limits);
// `data` must stay valid during the call (the fuzz target and the vDSO).
absl::StatusOr<CompiledCfi> CompileCfiFromMemory(const void* data, size_t size,
                                                 const CfiLimits& limits);

}  // namespace vigil
