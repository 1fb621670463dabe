// libFuzzer target: the agent parses files and text that any local user
// controls. Here: the CFI compiler on an arbitrary ELF image (truncated
// sections, absurd counts, CFI programs of any shape), and the
// /proc/PID/maps parser on arbitrary text (paths are user-chosen). Every
// input must end in a table or an error, within the time bound, with no
// sanitizer report. Built and run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "agent/profile/cfi_compiler.h"
#include "agent/profile/unwind_tables.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::CfiLimits limits;
  limits.max_rows = 1 << 16;
  limits.max_time = absl::Seconds(1);
  absl::StatusOr<vigil::CompiledCfi> c = vigil::CompileCfiFromMemory(data, size, limits);
  if (c.ok()) {
    for (size_t i = 1; i < c->rows.size(); ++i) {
      if (c->rows[i - 1].pc >= c->rows[i].pc) __builtin_trap();  // rows must be sorted
    }
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const vigil::ExecMapping& m : vigil::ParseExecMappings(text)) {
    if (m.end <= m.start) __builtin_trap();
  }
  return 0;
}
