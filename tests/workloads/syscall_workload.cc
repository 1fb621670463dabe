// A workload whose syscalls are known exactly: thread i makes
//   getppid  x (1000 + 100 i)              all succeed
//   close(-1) x (10 + i)                   all fail (EBADF)
//   access   x (20 + 2 i), every other one on a missing path (ENOENT)
// and prints, once all threads are done:
//   pid P
//   tid T getppid A close B access C access_errors D     (one line per thread)
// usage: syscall_workload [THREADS]   (default 4, max 64)
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "tests/workloads/syscall_mix.h"

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 4;
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "usage: syscall_workload [THREADS 1-64]\n");
    return 2;
  }
  std::vector<vigil::test::MixResult> results(threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([i, &results] { results[i] = vigil::test::RunSyscallMix(i); });
  }
  for (auto& t : pool) t.join();
  printf("pid %d\n", getpid());
  for (const auto& r : results) {
    printf("tid %d getppid %ld close %ld access %ld access_errors %ld\n", r.tid, r.getppid,
           r.close_calls, r.access_calls, r.access_errors);
  }
  return 0;
}
