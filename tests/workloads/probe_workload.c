/* vigil probe's own workload: functions called a known number of times with
 * known arguments, once the test says "go" on stdin. Prints "ready" (with
 * its pid) first and "done" after the calls, then waits on stdin until
 * killed, so the calls happen only inside the test's probe window. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline, used)) long probe_add(long a, long b) {
  sink += a + b;
  return a + b;
}

/* About 1 ms: the latency histogram's [2^20, 2^21) ns bucket. */
__attribute__((noinline, used)) void probe_nap(void) {
  struct timespec ts = {0, 1000000};

  nanosleep(&ts, NULL);
  sink++;
}

int main(void) {
  char line[64];

  setvbuf(stdout, NULL, _IONBF, 0);
  printf("ready %d\n", (int)getpid());
  if (!fgets(line, sizeof(line), stdin)) return 1;
  for (int i = 0; i < 200; i++) probe_add(3, 4);
  for (int i = 0; i < 100; i++) probe_add(5, 6);
  for (int i = 0; i < 20; i++) probe_nap();
  printf("done\n");
  while (fgets(line, sizeof(line), stdin))
    ;
  return 0;
}
