// The syscalls table's coarsening (--syscalls-store-coarsen), in isolation:
// what one merge costs in the collection loop, and what a whole-window
// query costs over merged intervals against raw ones holding as many
// records. The host is query_bench's: 3,000 threads, each making the same
// two syscalls every interval, so merged intervals hold as many records
// as raw ones.
//
//   store_bench [--threads 3000] [--rounds 30]
//
// Prints the best of --rounds for each. No BPF, no root.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "agent/syscalls/syscalls_aggregate.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

// One 1 s interval: every thread made getppid and clock_nanosleep.
SyscallInterval Raw(int threads, int seed) {
  SyscallInterval iv;
  for (int t = 0; t < threads; ++t) {
    for (uint32_t nr : {110u, 230u}) {
      syscall_stats s = {};
      s.calls = 5;
      s.total_ns = 5000 + seed;
      s.max_ns = 2000;
      s.hist[10 + (seed + t) % 3] = 3;
      s.hist[12] = 2;
      memcpy(s.comm, "worker", 7);
      memcpy(s.pcomm, "query_bench", 12);
      iv.Append({static_cast<uint32_t>(1000 + t / 6), static_cast<uint32_t>(10000 + t), nr, 0}, s);
    }
  }
  return iv;
}

template <typename Fn>
double BestMs(int64_t rounds, Fn&& fn) {
  double best = 1e18;
  for (int64_t k = 0; k < rounds; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

double QueryMs(const std::vector<SyscallInterval>& ivs, int64_t rounds) {
  const SyscallQuery q = *ValidateSyscallsRequest(v1::SyscallsRequest());
  return BestMs(rounds, [&] {
    SyscallMerger m(q);
    for (const SyscallInterval& iv : ivs) m.Add(iv);
    v1::SyscallsResponse r;
    m.Finish(&r);
  });
}

size_t Records(const std::vector<SyscallInterval>& ivs) {
  size_t n = 0;
  for (const SyscallInterval& iv : ivs) n += iv.records.size();
  return n;
}

}  // namespace
}  // namespace vigil

int main(int argc, char** argv) {
  using vigil::SyscallInterval;
  int64_t threads = 3000, rounds = 30;
  for (int i = 1; i < argc; ++i) {
    if (vigil::test::IntFlag("store_bench", argc, argv, &i, "--threads", 1, 100000, &threads)) {
      continue;
    }
    if (vigil::test::IntFlag("store_bench", argc, argv, &i, "--rounds", 1, 1000, &rounds)) continue;
    fprintf(stderr, "store_bench: unknown argument \"%s\" (see the comment at the top)\n", argv[i]);
    return 2;
  }
  const int n = static_cast<int>(threads);

  // One merge as the collection loop does it: a minute's merged interval
  // and the next raw one.
  SyscallInterval minute = vigil::Raw(n, 0);
  for (int i = 1; i < 59; ++i) minute.MergeNewer(vigil::Raw(n, i));
  const SyscallInterval next = vigil::Raw(n, 59);
  const double merge_ms = vigil::BestMs(rounds, [&] {
    SyscallInterval copy = minute;
    copy.MergeNewer(next);
  });

  // What the default cap (100,000 records) held on that host: 16 raw
  // intervals (16 s) without coarsening, 10 merged minutes and 4 raw
  // seconds with it.
  std::vector<SyscallInterval> raw, coarse;
  for (int i = 0; i < 16; ++i) raw.push_back(vigil::Raw(n, i));
  for (int c = 0; c < 10; ++c) coarse.push_back(minute);
  for (int i = 0; i < 4; ++i) coarse.push_back(vigil::Raw(n, i));

  printf("store_bench: %d threads x 2 syscalls, best of %ld\n", n, static_cast<long>(rounds));
  printf("| | records | ms |\n|---|---:|---:|\n");
  printf(
      "| one merge (a merged minute + the next second; includes copying the minute) | %zu | %.2f "
      "|\n",
      minute.records.size() + next.records.size(), merge_ms);
  printf("| whole-window query, 16 raw intervals (16 s) | %zu | %.2f |\n", vigil::Records(raw),
         vigil::QueryMs(raw, rounds));
  printf("| whole-window query, 10 merged minutes + 4 raw seconds (10 min) | %zu | %.2f |\n",
         vigil::Records(coarse), vigil::QueryMs(coarse, rounds));
  return 0;
}
