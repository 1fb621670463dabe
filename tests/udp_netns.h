// UDP drop scenarios run in a private network namespace: a forked child
// unshares its network namespace, brings up lo, snapshots the namespace's
// /proc/net/snmp{,6}, makes the kernel drop datagrams in a known way, and
// snapshots again. The child (and so the namespace and the receiving socket)
// lives until the run is destroyed, so a collector can attribute the socket
// to it; the namespace goes away with the child, whatever the test does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace vigil::test {

struct UdpScenario {
  enum Kind {
    kRcvbufFull,  // a receiver with the smallest SO_RCVBUF that never reads
    kNoSocket,    // datagrams to a port nothing is bound to
    kBadCsum,     // datagrams with a wrong UDP checksum, from a raw socket,
                  // to a closed port (the kernel checks before replying)
  };
  Kind kind = kRcvbufFull;
  bool ipv6 = false;
  uint16_t port = 5140;
  int datagrams = 200;  // per port
  int ports = 1;        // kNoSocket, kBadCsum: port, port+1, ...
  size_t payload = 256;
};

class NetnsUdpRun {
 public:
  // Needs root (unshare). The scenario has run when this returns.
  static absl::StatusOr<std::unique_ptr<NetnsUdpRun>> Start(const UdpScenario& s);
  ~NetnsUdpRun();  // lets the child exit and reaps it

  pid_t pid() const { return pid_; }
  // The namespace's inode (as in /proc/PID/ns/net).
  uint64_t netns() const { return netns_; }
  // Non-zero snmp counters' deltas over the scenario, by name: "Udp:NoPorts"
  // style for /proc/net/snmp and the snmp6 names ("Udp6NoPorts").
  const std::map<std::string, int64_t>& deltas() const { return deltas_; }
  int64_t Delta(const std::string& name) const;

 private:
  NetnsUdpRun() = default;
  pid_t pid_ = -1;
  int release_fd_ = -1;
  uint64_t netns_ = 0;
  std::map<std::string, int64_t> deltas_;
};

// Reads /proc/self/net/snmp's Udp counters and /proc/self/net/snmp6's
// Udp6 ones for the calling thread's namespace.
std::map<std::string, int64_t> ReadUdpSnmp();

}  // namespace vigil::test
