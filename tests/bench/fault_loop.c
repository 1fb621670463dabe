/* Page-fault benchmark workload: maps CHUNK_MIB MiB of fresh anonymous
 * memory, writes one byte in every 4 KiB page (each write is a minor fault:
 * huge pages are refused with MADV_NOHUGEPAGE, the worst case for a
 * per-fault hook), unmaps it, and repeats, flat out, for SECONDS. Prints the
 * rate: "GIB_PER_S PAGES_PER_S".
 * usage: fault_loop SECONDS [CHUNK_MIB] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 20;
  const size_t chunk = (size_t)(argc > 2 ? atol(argv[2]) : 64) << 20;
  const size_t page = 4096;
  size_t pages = 0;

  if (seconds <= 0 || chunk == 0) {
    fprintf(stderr, "usage: fault_loop SECONDS>0 [CHUNK_MIB>0]\n");
    return 2;
  }
  const double t0 = now_s();
  double t = t0;
  while (t - t0 < seconds) {
    char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    madvise(p, chunk, MADV_NOHUGEPAGE);
    for (size_t off = 0; off < chunk; off += page) ((volatile char *)p)[off] = 1;
    munmap(p, chunk);
    pages += chunk / page;
    t = now_s();
  }
  const double el = t - t0;
  printf("%.3f %.0f\n", (double)pages * page / (1u << 30) / el, pages / el);
  return 0;
}
