// Attaches the do-nothing floor programs and holds them until SIGINT/SIGTERM.
// Prints "ready" on stdout once attached. With PART, the programs do that one
// piece of vigil's syscall programs (see floor.bpf.c).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "agent/bpf_util.h"
#include "bench/floor.skel.h"

int main(int argc, char** argv) {
  static const char* const kParts[] = {"empty",        "ktime",   "storage",
                                       "storage_both", "prandom", "hash"};
  int part = 0;
  static const char kUsage[] =
      "usage: floor_loader [empty|ktime|storage|storage_both|prandom|hash]\n";
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(kUsage, stdout);
    return 0;
  }
  if (argc > 2) {
    fputs(kUsage, stderr);
    return 2;
  }
  if (argc == 2) {
    part = -1;
    for (int i = 0; i < static_cast<int>(sizeof(kParts) / sizeof(kParts[0])); ++i) {
      if (!strcmp(argv[1], kParts[i])) part = i;
    }
    if (part < 0) {
      fprintf(stderr, "floor_loader: unknown part \"%s\" (see --help)\n", argv[1]);
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  vigil::SkelPtr<floor_bpf> skel(floor_bpf::open());
  if (skel) skel->rodata->part = part;
  if (!skel || floor_bpf::load(skel.get()) != 0 || floor_bpf::attach(skel.get()) != 0) {
    fprintf(stderr, "floor_loader: cannot load/attach the floor programs\n");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  return 0;
}
