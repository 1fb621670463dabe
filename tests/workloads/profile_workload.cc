// CPU workload with a known split, for the profiler tests:
//   profile_workload spin SECONDS [LIB_PERCENT]
//     one thread picks, per ~0.2 ms unit of work, SpinInLibrary (shared
//     library) with probability LIB_PERCENT% (default 25) and SpinInMain
//     otherwise, for SECONDS of CPU time. At exit it prints the CPU time
//     measured inside each function:
//       pid P
//       main_ns A lib_ns B
//   profile_workload syscalls SECONDS
//     spends SECONDS making cheap syscalls (kernel frames), then prints pid P.
//   profile_workload jit SECONDS
//     (x86-64) copies a counting loop into an anonymous executable mapping,
//     names it "vigil_jit_spin" in /tmp/perf-PID.map as a JIT would, and
//     runs it for SECONDS of CPU time; prints pid P.
//   profile_workload tick SECONDS
//     for SECONDS of wall time, wakes once a second to burn ~0.3 ms of CPU:
//     many of these make many live, occasionally sampled processes (the
//     benchmark's symbol-cache load).
// Random choice per unit keeps the split from aliasing with a periodic
// sampler. Built with -fno-omit-frame-pointer.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "tests/workloads/profile_spin.h"

namespace vigil_test {

__attribute__((noinline)) uint64_t SpinInMain(uint64_t iterations) {
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

namespace {

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int Spin(double seconds, int lib_percent) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> pct(0, 99);
  const uint64_t budget = static_cast<uint64_t>(seconds * 1e9);
  const uint64_t start = ThreadCpuNs();
  uint64_t main_ns = 0, lib_ns = 0, sink = 0;
  constexpr uint64_t kUnit = 100000;  // ~0.1-0.3 ms
  while (ThreadCpuNs() - start < budget) {
    const bool lib = pct(rng) < lib_percent;
    const uint64_t t0 = ThreadCpuNs();
    sink += lib ? vigil_test::SpinInLibrary(kUnit) : vigil_test::SpinInMain(kUnit);
    (lib ? lib_ns : main_ns) += ThreadCpuNs() - t0;
  }
  printf("pid %d\nmain_ns %llu lib_ns %llu sink %llu\n", getpid(),
         static_cast<unsigned long long>(main_ns), static_cast<unsigned long long>(lib_ns),
         static_cast<unsigned long long>(sink & 1));
  return 0;
}

int Syscalls(double seconds) {
  const uint64_t budget = static_cast<uint64_t>(seconds * 1e9);
  const uint64_t start = ThreadCpuNs();
  int fd = open("/dev/null", O_RDONLY);
  char buf[64];
  while (ThreadCpuNs() - start < budget) {
    for (int i = 0; i < 1000; ++i) {
      syscall(SYS_getppid);
      if (pread(fd, buf, sizeof(buf), 0) < 0) return 1;
      syscall(SYS_fstat, fd, nullptr);  // fails with EFAULT: a kernel round trip
    }
  }
  close(fd);
  printf("pid %d\n", getpid());
  return 0;
}

int Jit(double seconds) {
#if defined(__x86_64__)
  // loop: dec %rdi; jnz loop; ret
  static const unsigned char kCode[] = {0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3};
  void* mem =
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  memcpy(mem, kCode, sizeof(kCode));
  char path[64];
  snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
  FILE* map = fopen(path, "w");
  if (map == nullptr) return 1;
  fprintf(map, "%lx %zx vigil_jit_spin\n", reinterpret_cast<unsigned long>(mem), sizeof(kCode));
  fclose(map);
  auto fn = reinterpret_cast<void (*)(uint64_t)>(mem);
  const uint64_t budget = static_cast<uint64_t>(seconds * 1e9);
  const uint64_t start = ThreadCpuNs();
  while (ThreadCpuNs() - start < budget) fn(1000000);
  printf("pid %d\n", getpid());
  // The map stays: the agent may read it after we exit. The test removes it.
  return 0;
#else
  fprintf(stderr, "jit: x86-64 only\n");
  return 3;
#endif
}

int Tick(double seconds) {
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  uint64_t sink = 0;
  do {
    const uint64_t t0 = ThreadCpuNs();
    while (ThreadCpuNs() - t0 < 300000) sink += vigil_test::SpinInMain(1000);
    usleep(1000000);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (static_cast<double>(now.tv_sec - start.tv_sec) < seconds);
  return static_cast<int>(sink & 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "spin") == 0) {
    return Spin(atof(argv[2]), argc > 3 ? atoi(argv[3]) : 25);
  }
  if (argc >= 3 && strcmp(argv[1], "syscalls") == 0) return Syscalls(atof(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "tick") == 0) return Tick(atof(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "jit") == 0) return Jit(atof(argv[2]));
  fprintf(stderr,
          "usage: profile_workload spin SECONDS [LIB_PERCENT] | syscalls SECONDS | tick SECONDS | "
          "jit SECONDS\n");
  return 2;
}
