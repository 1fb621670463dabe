// Start-up checks that turn a libbpf failure deep inside load into one line
// naming the missing thing: privileges, BTF, or kernel version.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace vigil {

struct KernelVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
};

// Parses a uname release such as "6.18.44-fc-v769". Pure, for tests.
bool ParseKernelRelease(const std::string& release, KernelVersion* out);

// Oldest kernel Vigil supports: tp_btf (5.5) and task storage for tracing
// programs (5.11).
inline constexpr KernelVersion kMinKernel = {5, 11, 0};

// Checks, in order: CAP_BPF + CAP_PERFMON (or root), kernel BTF at
// /sys/kernel/btf/vmlinux, and kernel version >= kMinKernel.
absl::Status RunPreflight();

}  // namespace vigil
