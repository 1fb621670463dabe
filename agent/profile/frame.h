// A symbolized stack frame, shared (immutable) between the symbol caches and
// every interval in the store that references it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace vigil {

// What every frame inside one function shares: its name and module. The
// symbol cache hands out one per function (and one per module for unnamed
// frames), so a memoized address costs a pointer and an offset rather than
// two copied strings: at 8,192 addresses per process the copies were the
// bulk of the profiler's heap on a busy host.
struct FrameSymbol {
  // Demangled function name; empty when the address could not be named.
  std::string name;
  // Module path ("/usr/lib/x86_64-linux-gnu/libc.so.6"), "[kernel]" for
  // kernel frames, "[unknown]" when no mapping covers the address.
  std::string module;
  // The function's id in the symbol cache's function table: equal for
  // every frame of one (name, module), so merging counts by array index.
  // 0: not interned (the table was full, an unnamed frame, or a frame built
  // by hand).
  uint32_t fn_id = 0;
};

struct Frame {
  // A frame with symbol strings of its own (symbolizers, tests); the symbol
  // cache swaps them for shared ones.
  static Frame Of(std::string name, std::string module, uint64_t offset = 0, bool kernel = false);

  // Never null in a frame built by Of() or by the symbol cache.
  std::shared_ptr<const FrameSymbol> symbol;
  // From the start of the function when named, else from the start of the
  // module (file offset) when the module is known, else the raw address.
  uint64_t offset = 0;
  bool kernel = false;

  const std::string& name() const;
  const std::string& module() const;
  uint32_t fn_id() const { return symbol ? symbol->fn_id : 0; }
  bool named() const { return !name().empty(); }
  // "name", or "module+0xoffset" for an unnamed frame.
  std::string DisplayName() const;
};

using FramePtr = std::shared_ptr<const Frame>;

}  // namespace vigil
