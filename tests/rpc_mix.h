// Clients calling every RPC of one agent, each answer checked against what
// must hold under load: shared by the CI load test (tests/e2e/load_test.cc)
// and the soak (tests/bench/soak.cc).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil::test {

// One call's outcome: the RPC, gRPC's status, what was wrong with the
// answer ("" when it held), and how long it took.
struct MixCall {
  const char* method = "";
  grpc::Status status;
  std::string insane;
  absl::Duration latency;
};

class RpcMix {
 public:
  // self: the caller's pid (its own syscalls must show); agent: vigild's
  // pid (its own stacks are asked for); udp_fd sends one datagram to
  // closed_port (a NO_SOCKET drop) per GetDrops; before busy_since the
  // profiler may still have only idle samples; `recent` is the short range
  // half the calls ask for (a few of the agent's intervals).
  RpcMix(uint32_t self, uint32_t agent, int udp_fd, uint16_t closed_port, absl::Time busy_since,
         absl::Duration recent)
      : self_(self),
        agent_(agent),
        udp_fd_(udp_fd),
        closed_port_(closed_port),
        busy_since_ns_(absl::ToUnixNanos(busy_since)),
        recent_(recent) {}

  // The clients paused and start again: before `t` the profiler may again
  // have only idle samples. Safe while clients call Next.
  void BusyAgainFrom(absl::Time t) { busy_since_ns_ = absl::ToUnixNanos(t); }

  // The n-th call of a client: GetSyscalls (three shapes), GetStatus,
  // GetHot, GetProfile, GetMemory, ListAlerts and GetDrops in rotation,
  // half of them over the last `recent`, half over the whole window.
  MixCall Next(v1::Vigil::Stub& stub, uint64_t n) const;

 private:
  const uint32_t self_, agent_;
  const int udp_fd_;
  const uint16_t closed_port_;
  std::atomic<int64_t> busy_since_ns_;
  const absl::Duration recent_;
};

// Holds a WatchAlerts stream open for `hold`; OK when that deadline ended
// it, as it must.
MixCall WatchFor(v1::Vigil::Stub& stub, absl::Duration hold);

// /proc/PID/status VmRSS in kB, and open descriptors (-1: unreadable).
uint64_t RssKb(pid_t pid);
// VmRSS and its parts from one read of /proc/PID/status, in kB (0 if
// unreadable).
struct RssParts {
  uint64_t rss = 0, anon = 0, file = 0, shmem = 0;
};
RssParts ReadRssParts(pid_t pid);
// The agent's own heap (GetStatus), in kB; ok false if it did not answer
// within 5 s.
struct HeapKb {
  bool ok = false;
  uint64_t in_use = 0, free = 0;
  // Beside the heap: the profiler's symbol memo, the cache that fills
  // slowest (addresses, not kB; 0 when the profiler is off).
  uint64_t memo_addrs = 0;
};
HeapKb AgentHeapKb(v1::Vigil::Stub& stub);
int OpenFds(pid_t pid);
// utime + stime of a process, in seconds.
double CpuSeconds(pid_t pid);

// One datagram to a loopback port nobody listens on: a NO_SOCKET drop.
void SendToClosedPort(int fd, uint16_t port);

}  // namespace vigil::test
