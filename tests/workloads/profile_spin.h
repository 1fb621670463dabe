// Two CPU burners with identical bodies, one in the workload executable and
// one in libvigil_profile_spin.so, so that `vigil hot` must name both the
// function and the shared library.
#pragma once

#include <cstdint>

namespace vigil_test {

// Spins for `iterations` rounds of integer work; returns a value so the
// compiler keeps the loop.
uint64_t SpinInLibrary(uint64_t iterations);  // in the shared library
uint64_t SpinInMain(uint64_t iterations);     // in the executable

}  // namespace vigil_test
