#include "agent/preflight.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace vigil {
namespace {

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

bool HasEffectiveCap(int cap) {
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

bool ParseKernelRelease(const std::string& release, KernelVersion* out) {
  KernelVersion v;
  int n = sscanf(release.c_str(), "%d.%d.%d", &v.major, &v.minor, &v.patch);
  if (n < 2 || v.major <= 0 || v.minor < 0) return false;
  if (n < 3) v.patch = 0;
  *out = v;
  return true;
}

absl::Status RunPreflight() {
  const bool sys_admin = HasEffectiveCap(CAP_SYS_ADMIN);
  if (!sys_admin && !(HasEffectiveCap(CAP_BPF) && HasEffectiveCap(CAP_PERFMON))) {
    return absl::PermissionDeniedError(
        absl::StrFormat("missing CAP_BPF and CAP_PERFMON (running as uid %d): run as root or "
                        "grant CAP_BPF,CAP_PERFMON,CAP_SYS_RESOURCE",
                        geteuid()));
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return absl::FailedPreconditionError(
        "kernel BTF missing: /sys/kernel/btf/vmlinux not readable (needs a "
        "kernel built with CONFIG_DEBUG_INFO_BTF=y)");
  }
  struct utsname u;
  KernelVersion v;
  if (uname(&u) != 0 || !ParseKernelRelease(u.release, &v)) {
    return absl::FailedPreconditionError("cannot read the kernel version from uname");
  }
  if (v.major < kMinKernel.major || (v.major == kMinKernel.major && v.minor < kMinKernel.minor)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("kernel %s too old: Vigil needs %d.%d or newer (tp_btf, task storage)",
                        u.release, kMinKernel.major, kMinKernel.minor));
  }
  return absl::OkStatus();
}

}  // namespace vigil
