// Attaches the do-nothing floor programs and holds them until SIGINT/SIGTERM.
// Prints "ready" on stdout once attached.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "agent/bpf_util.h"
#include "bench/floor.skel.h"

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  vigil::SkelPtr<floor_bpf> skel(floor_bpf::open_and_load());
  if (!skel || floor_bpf::attach(skel.get()) != 0) {
    fprintf(stderr, "floor_loader: cannot load/attach the floor programs\n");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  return 0;
}
