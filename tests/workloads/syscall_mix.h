// The exact syscall mix of one workload thread, shared by the in-process BPF
// test and the syscall_workload binary.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vigil::test {

struct MixResult {
  int tid = 0;
  long getppid = 0;
  long close_calls = 0;  // all fail with EBADF
  long access_calls = 0;
  long access_errors = 0;  // ENOENT
};

// Raw syscall() so libc caching or vDSO shortcuts cannot change the counts.
inline MixResult RunSyscallMix(int i) {
  MixResult r;
  r.tid = static_cast<int>(syscall(SYS_gettid));
  r.getppid = 1000 + 100 * i;
  for (long k = 0; k < r.getppid; ++k) syscall(SYS_getppid);
  r.close_calls = 10 + i;
  for (long k = 0; k < r.close_calls; ++k) syscall(SYS_close, -1);
  r.access_calls = 20 + 2 * i;
  for (long k = 0; k < r.access_calls; ++k) {
    const bool missing = k % 2 == 1;
    if (syscall(SYS_access, missing ? "/nonexistent-vigil-test" : "/", F_OK) != 0)
      ++r.access_errors;
  }
  return r;
}

}  // namespace vigil::test
