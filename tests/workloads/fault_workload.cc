// Workload for the page-fault profiler's tests (built -O2
// -fomit-frame-pointer: the unwinder must find TouchPages' callers from CFI).
//
//   fault_workload MIB SECONDS
//       prints "pid P", then waits for a line on stdin; then TouchPages()
//       maps MIB MiB of fresh anonymous memory and writes one byte in every
//       4 KiB page, at a steady rate over SECONDS, unmaps it, prints
//       "done PAGES", and waits for stdin to close before exiting (so the
//       test can read its /proc/PID/stat after the run).
//
// Huge pages are refused for the mapping (MADV_NOHUGEPAGE): with them one
// fault maps 2 MiB, and the test's ground truth (one minor fault per page)
// would not hold.
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr size_t kPage = 4096;

void SleepUntil(const timespec& t) {
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr) == EINTR) {
  }
}

}  // namespace

// Not static, not inlined: the tests look for it by name on the stack.
__attribute__((noinline)) size_t TouchPages(size_t bytes, double seconds) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0) perror("madvise(MADV_NOHUGEPAGE)");
  volatile char* mem = static_cast<volatile char*>(p);
  const size_t pages = bytes / kPage;
  // Paced per MiB: 256 first touches, then sleep until that MiB's share of
  // the time has passed.
  constexpr size_t kBurst = (1 << 20) / kPage;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (size_t i = 0; i < pages; ++i) {
    mem[i * kPage] = static_cast<char>(i);  // the first touch: one minor fault
    if ((i + 1) % kBurst == 0) {
      const double at = seconds * static_cast<double>(i + 1) / static_cast<double>(pages);
      timespec t = start;
      const int64_t ns = static_cast<int64_t>(at * 1e9) + t.tv_nsec;
      t.tv_sec += static_cast<time_t>(ns / 1000000000);
      t.tv_nsec = static_cast<long>(ns % 1000000000);
      SleepUntil(t);
    }
  }
  munmap(p, bytes);
  return pages;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fault_workload MIB SECONDS\n");
    return 2;
  }
  const size_t mib = strtoull(argv[1], nullptr, 10);
  const double seconds = atof(argv[2]);
  printf("pid %d\n", getpid());
  fflush(stdout);
  char line[64];
  if (fgets(line, sizeof(line), stdin) == nullptr) return 1;
  const size_t pages = TouchPages(mib << 20, seconds);
  printf("done %zu\n", pages);
  fflush(stdout);
  while (fgets(line, sizeof(line), stdin) != nullptr) {
  }
  return 0;
}
