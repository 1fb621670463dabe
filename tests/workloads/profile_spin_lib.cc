#include "tests/workloads/profile_spin.h"

namespace vigil_test {

__attribute__((noinline)) uint64_t SpinInLibrary(uint64_t iterations) {
  // State lives on the stack so that GCC gives this leaf a frame (it skips
  // the frame-pointer prologue of leaves that need no stack, even with
  // -fno-omit-frame-pointer, and the caller would vanish from the stack).
  volatile uint64_t state = 88172645463325252ull;
  for (uint64_t i = 0; i < iterations; ++i) {
    uint64_t x = state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state = x;
  }
  return state;
}

}  // namespace vigil_test
