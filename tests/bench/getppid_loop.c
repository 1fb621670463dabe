/* Tight getppid loop: prints nanoseconds per syscall (best of --reps runs).
 * usage: getppid_loop [iterations] [reps] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 2000000;
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  double best = 0;

  if (iters <= 0 || reps <= 0) {
    fprintf(stderr, "usage: getppid_loop [iterations>0] [reps>0]\n");
    return 2;
  }
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) syscall(SYS_getppid);
    double per = (now_ns() - t0) / iters;
    if (r == 0 || per < best) best = per;
  }
  printf("%.1f\n", best);
  return 0;
}
