// Workloads for the spin-alert tests. Built with -fno-omit-frame-pointer, as
// an application would be, but its hot code is the vDSO's and glibc's
// clock_gettime, which have none: the alert must still name the spinner.
//
//   spin_workload spin SECONDS [THREADS] [NAME]
//       THREADS threads (default 1) spin in pure user space for SECONDS: a
//       poll loop that computes its remaining time with clock_gettime (vDSO,
//       no syscall) and so never waits. NAME sets the thread names.
//   spin_workload busy-syscalls SECONDS   as busy, one getppid() per ms
//   spin_workload sleep SECONDS           sleeps
//   spin_workload blocked SECONDS         blocked in read() on a pipe
//   spin_workload spin-then-block SPIN BLOCK
//       spins SPIN seconds, then blocks in read() for BLOCK seconds (the
//       thread stays alive, so its alert must resolve as blocked/syscall)
//
// Prints "pid P" then "tid T" per worker thread, then "done" at the end.
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void AnnounceThread(const char* name) {
  if (name != nullptr) pthread_setname_np(pthread_self(), name);
  printf("tid %ld\n", static_cast<long>(syscall(SYS_gettid)));
  fflush(stdout);
}

// The function the alert's stack must name.
__attribute__((noinline)) uint64_t VigilTestSpinPoll(double seconds) {
  const double deadline = Now() + seconds;
  volatile uint64_t polls = 0;
  for (;;) {
    // "Nothing ready yet": poll the clock again, never waiting. Most
    // samples land in the vDSO.
    if (deadline - Now() <= 0) break;
    ++polls;
  }
  return polls;
}

__attribute__((noinline)) void BusyWithSyscalls(double seconds) {
  const double deadline = Now() + seconds;
  double next = Now();
  while (Now() < deadline) {
    if (Now() >= next) {
      syscall(SYS_getppid);
      next += 0.001;
    }
  }
}

void BlockInRead(double seconds) {
  int p[2];
  if (pipe(p) != 0) abort();
  std::thread closer([&] {
    timespec ts = {static_cast<time_t>(seconds),
                   static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
    nanosleep(&ts, nullptr);
    close(p[1]);
  });
  char c;
  if (read(p[0], &c, 1) < 0) abort();  // returns 0 at EOF
  closer.join();
  close(p[0]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spin_workload MODE SECONDS [...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const double seconds = atof(argv[2]);
  printf("pid %d\n", getpid());
  fflush(stdout);
  std::vector<std::thread> threads;
  if (mode == "spin") {
    const int n = argc > 3 ? atoi(argv[3]) : 1;
    const char* name = argc > 4 ? argv[4] : "spinner";
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([=] {
        AnnounceThread(name);
        VigilTestSpinPoll(seconds);
      });
    }
  } else if (mode == "busy-syscalls") {
    threads.emplace_back([=] {
      AnnounceThread("busysys");
      BusyWithSyscalls(seconds);
    });
  } else if (mode == "sleep") {
    threads.emplace_back([=] {
      AnnounceThread("sleeper");
      timespec ts = {static_cast<time_t>(seconds), 0};
      nanosleep(&ts, nullptr);
    });
  } else if (mode == "blocked") {
    threads.emplace_back([=] {
      AnnounceThread("blocked");
      BlockInRead(seconds);
    });
  } else if (mode == "spin-then-block") {
    const double block = argc > 3 ? atof(argv[3]) : 1;
    threads.emplace_back([=] {
      AnnounceThread("spinblock");
      VigilTestSpinPoll(seconds);
      BlockInRead(block);
    });
  } else {
    fprintf(stderr, "spin_workload: unknown mode %s\n", mode.c_str());
    return 2;
  }
  for (auto& t : threads) t.join();
  printf("done\n");
  return 0;
}
