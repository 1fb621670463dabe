// unique_ptr for a C library's handle that one function frees, e.g.
// UniqueC<Elf, elf_end>: the deleter is named once, as the function,
// rather than a one-line struct per handle type.
#pragma once

#include <memory>

namespace vigil {

template <auto Free>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <typename T, auto Free>
using UniqueC = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace vigil
