// Syscall number -> name for the architecture Vigil was built for, generated
// at build time from the kernel UAPI header (cmake/SyscallTable.cmake).
#pragma once

#include <string>
#include <string_view>

namespace vigil {

// The name, e.g. "read"; empty if the table does not know nr.
std::string_view SyscallNameOrEmpty(int nr);
// The name, or "syscall_N" for an unknown number.
std::string SyscallName(int nr);
// The number for a name, or -1.
int SyscallNumber(std::string_view name);

}  // namespace vigil
