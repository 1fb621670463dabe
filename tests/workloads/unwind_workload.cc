// Workloads for the unwinder tests, built three times from this file: with
// -O2 -fomit-frame-pointer (unwind_workload_nofp), with
// -fno-omit-frame-pointer (unwind_workload_fp), and without unwind tables,
// so only -g's .debug_frame describes its frames (unwind_workload_debugframe). Nothing here is
// shaped to help a stack walker: the hot code is where it would be in production.
//
//   unwind_workload chain SECONDS
//       main -> ChainOuter -> ChainMiddle -> ChainInner, the inner loop hot.
//   unwind_workload timedwait SECONDS
//       a thread "rdk:main" in QueueServe::pop_serve(), which calls glibc's
//       pthread_cond_timedwait with a deadline computed from a negative
//       timeout, over and over (the librdkafka incident's shape): the
//       thread spins at 100% CPU with glibc's code hot. Debian 12's glibc
//       (2.36) still enters futex() for an expired deadline (strace -c: 168k
//       futex calls in 2 s), so this thread is not syscall-free and the spin
//       alert rightly stays quiet; it tests that the caller of frameless
//       glibc code is on the stack.
//   unwind_workload vdso SECONDS
//       VdsoPoll() calls clock_gettime in a loop: the hot code is the vDSO's.
//
// Prints "pid P" (and "tid T" for a thread) at start, "done" at the end.
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

volatile uint64_t sink;

__attribute__((noinline)) uint64_t ChainInner(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 200000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

__attribute__((noinline)) uint64_t ChainMiddle(uint64_t seed) {
  const uint64_t a = ChainInner(seed);
  sink = a;
  return a ^ seed;
}

__attribute__((noinline)) void ChainOuter(double seconds) {
  const double deadline = Now() + seconds;
  uint64_t s = 1;
  while (Now() < deadline) s = ChainMiddle(s);
  sink = s;
}

class QueueServe {
 public:
  // Serves the queue until the deadline: with nothing queued, the wait
  // times out at once, and the loop asks again (busy, never sleeping).
  // tv_sec < 0 makes glibc return ETIMEDOUT before any futex call.
  __attribute__((noinline)) uint64_t pop_serve(double seconds) {
    const double deadline = Now() + seconds;
    uint64_t waits = 0;
    pthread_mutex_lock(&mu_);
    while (Now() < deadline) {
      const timespec past = {-1, 0};
      pthread_cond_timedwait(&cv_, &mu_, &past);
      ++waits;
    }
    pthread_mutex_unlock(&mu_);
    return waits;
  }

 private:
  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv_ = PTHREAD_COND_INITIALIZER;
};

__attribute__((noinline)) uint64_t VdsoPoll(double seconds) {
  const double deadline = Now() + seconds;
  uint64_t polls = 0;
  while (Now() < deadline) ++polls;
  return polls;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: unwind_workload chain|timedwait|vdso SECONDS\n");
    return 2;
  }
  const double seconds = atof(argv[2]);
  printf("pid %d\n", getpid());
  fflush(stdout);
  if (strcmp(argv[1], "chain") == 0) {
    ChainOuter(seconds);
  } else if (strcmp(argv[1], "timedwait") == 0) {
    std::thread t([seconds] {
      pthread_setname_np(pthread_self(), "rdk:main");
      printf("tid %ld\n", static_cast<long>(syscall(SYS_gettid)));
      fflush(stdout);
      QueueServe q;
      sink = q.pop_serve(seconds);
    });
    t.join();
  } else if (strcmp(argv[1], "vdso") == 0) {
    sink = VdsoPoll(seconds);
  } else {
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
  printf("done\n");
  return 0;
}
