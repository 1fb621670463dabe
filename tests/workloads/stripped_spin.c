// A C workload for the symbols-of-stripped-binaries tests: built with -g,
// then split (tests/CMakeLists.txt) into a stripped copy, its debug file
// (served by debuginfod, never installed locally), and a copy carrying
// MiniDebugInfo. Prints its pid and the address of its burner, then burns
// CPU there for argv[1] seconds.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long vigil_sink;

static double CpuSeconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Not exported (executables have no dynamic symbols of their own): only a
// symbol table can name it.
__attribute__((noinline)) void vigil_stripped_spin(double seconds) {
  const double until = CpuSeconds() + seconds;
  while (CpuSeconds() < until) {
    for (int i = 0; i < 100000; ++i) vigil_sink += (unsigned long)i * 7;
  }
}

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  printf("pid %d\nfn %p\n", (int)getpid(), (void*)&vigil_stripped_spin);
  fflush(stdout);
  vigil_stripped_spin(seconds);
  return 0;
}
