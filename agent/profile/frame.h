// A symbolized stack frame, shared (immutable) between the symbol caches and
// every interval in the store that references it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace vigil {

struct Frame {
  // Demangled function name; empty when the address could not be named.
  std::string name;
  // Module path ("/usr/lib/x86_64-linux-gnu/libc.so.6"), "[kernel]" for
  // kernel frames, "[unknown]" when no mapping covers the address.
  std::string module;
  // From the start of the function when named, else from the start of the
  // module (file offset) when the module is known, else the raw address.
  uint64_t offset = 0;
  bool kernel = false;
  // The function's id in the symbol cache's function table: equal for
  // every frame of one (name, module), so merging counts by array index.
  // 0: not interned (the table was full, or a frame built by hand).
  uint32_t fn_id = 0;

  bool named() const { return !name.empty(); }
  // "name", or "module+0xoffset" for an unnamed frame.
  std::string DisplayName() const;
};

using FramePtr = std::shared_ptr<const Frame>;

}  // namespace vigil
