// udpdrops_bench: how many UDP drops per second Vigil counts exactly, and
// what vigild's CPU is at that rate. Not a CTest test (it takes a while and
// wants the machine to itself); run it as root:
//   build/tests/udpdrops_bench [--seconds N] [--senders N]
//
// For each scenario, a forked child in a private network namespace floods
// loopback with sendmmsg() for N seconds: to a closed port (NO_SOCKET), or
// to a receiver that never reads (SOCKET_RCVBUFF). The namespace's
// /proc/net/snmp delta is the truth; `vigil drops --json` must equal it.
// vigild's CPU is its utime+stime delta (/proc/PID/stat) over the flood.
#include <arpa/inet.h>
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/test_util.h"
#include "tests/udp_netns.h"
#include "vigil/v1/vigil.pb.h"

namespace {

using vigil::test::RunCommand;

struct Scenario {
  const char* name;
  bool rcvbuf;  // else: closed port
  const char* snmp;
};

struct Result {
  uint64_t netns = 0;
  int64_t snmp_delta = 0;
  double seconds = 0;
};

uint64_t ProcCpuTicks(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(s.substr(rp + 2), ' ');
  uint64_t utime = 0, stime = 0;  // fields 14 and 15 of stat; 12, 13 after ")"
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return utime + stime;
}

void BringUpLoopback() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr = {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  ioctl(fd, SIOCSIFFLAGS, &ifr);
  close(fd);
}

// Child: floods for `seconds` with `senders` processes, reports
// "<snmp delta> <elapsed s>", then waits for the parent to let go.
void Flood(const Scenario& sc, int seconds, int senders, int report_fd, int release_fd) {
  if (unshare(CLONE_NEWNET) != 0) {
    dprintf(report_fd, "error unshare: %s\n", strerror(errno));
    _exit(1);
  }
  BringUpLoopback();
  sockaddr_in dst = {};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons(5160);
  int receiver = -1;
  if (sc.rcvbuf) {
    receiver = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
    bind(receiver, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
  }
  const auto before = vigil::test::ReadUdpSnmp();
  const absl::Time start = absl::Now();
  std::vector<pid_t> kids;
  for (int k = 0; k < senders; ++k) {
    pid_t p = fork();
    if (p == 0) {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      constexpr int kBatch = 64;
      char payload[16] = {};
      iovec iov = {payload, sizeof(payload)};
      mmsghdr msgs[kBatch] = {};
      for (auto& m : msgs) {
        m.msg_hdr.msg_name = &dst;
        m.msg_hdr.msg_namelen = sizeof(dst);
        m.msg_hdr.msg_iov = &iov;
        m.msg_hdr.msg_iovlen = 1;
      }
      const absl::Time end = start + absl::Seconds(seconds);
      while (absl::Now() < end) sendmmsg(fd, msgs, kBatch, 0);
      _exit(0);
    }
    kids.push_back(p);
  }
  for (pid_t p : kids) waitpid(p, nullptr, 0);
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  auto after = vigil::test::ReadUdpSnmp();
  dprintf(report_fd, "ok %lld %.3f\n", static_cast<long long>(after[sc.snmp] - before.at(sc.snmp)),
          elapsed);
  char c;
  (void)!read(release_fd, &c, 1);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, senders = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--seconds") seconds = atoi(argv[i + 1]);
    if (f == "--senders") senders = atoi(argv[i + 1]);
  }
  if (seconds <= 0 || senders <= 0) {
    fprintf(stderr, "usage: udpdrops_bench [--seconds N] [--senders N]\n");
    return 2;
  }
  if (std::string why = vigil::test::BpfUnavailableReason(); !why.empty()) {
    fprintf(stderr, "udpdrops_bench: %s\n", why.c_str());
    return 1;
  }
  const long hz = sysconf(_SC_CLK_TCK);
  const Scenario scenarios[] = {
      {"NO_SOCKET (closed port)", false, "Udp:NoPorts"},
      {"SOCKET_RCVBUFF (full buffer)", true, "Udp:RcvbufErrors"},
  };
  struct Row {
    std::string name;
    double rate_base, rate;
    int64_t snmp;
    uint64_t vigil;
    double cpu_pct;
  };
  std::vector<Row> rows;
  for (const Scenario& sc : scenarios) {
    Row row{sc.name, 0, 0, 0, 0, 0};
    for (bool with_agent : {false, true}) {
      std::unique_ptr<vigil::test::ScopedVigild> agent;
      if (with_agent) {
        agent = std::make_unique<vigil::test::ScopedVigild>(
            std::vector<std::string>{"--interval", "1s"});
        if (!agent->ok()) {
          fprintf(stderr, "udpdrops_bench: vigild did not start:\n%s\n", agent->log().c_str());
          return 1;
        }
      }
      int report[2], release[2];
      if (pipe(report) != 0 || pipe(release) != 0) return 1;
      const uint64_t cpu0 = with_agent ? ProcCpuTicks(agent->pid()) : 0;
      pid_t child = fork();
      if (child == 0) {
        close(report[0]);
        close(release[1]);
        Flood(sc, seconds, senders, report[1], release[0]);
      }
      close(report[1]);
      close(release[0]);
      char buf[256] = {};
      ssize_t n = read(report[0], buf, sizeof(buf) - 1);
      const uint64_t cpu1 = with_agent ? ProcCpuTicks(agent->pid()) : 0;
      long long delta = 0;
      double elapsed = 0;
      if (n <= 0 || sscanf(buf, "ok %lld %lf", &delta, &elapsed) != 2) {
        fprintf(stderr, "udpdrops_bench: flood failed: %s\n", buf);
        return 1;
      }
      struct stat st;
      stat(absl::StrCat("/proc/", child, "/ns/net").c_str(), &st);
      if (!with_agent) {
        row.rate_base = delta / elapsed;
      } else {
        row.rate = delta / elapsed;
        row.snmp = delta;
        row.cpu_pct = 100.0 * (cpu1 - cpu0) / hz / elapsed;
        // Wait for the agent to publish the last interval, then compare.
        const absl::Time deadline = absl::Now() + absl::Seconds(10);
        do {
          absl::SleepFor(absl::Milliseconds(500));
          auto c = RunCommand({vigil::test::VigilPath(), "drops", "--agent", agent->agent(),
                               "--port", "5160", "--top", "10000", "--json"});
          vigil::v1::DropsResponse r;
          if (c.exit_code != 0 || !google::protobuf::util::JsonStringToMessage(c.out, &r).ok()) {
            fprintf(stderr, "udpdrops_bench: vigil drops: %s\n", c.err.c_str());
            return 1;
          }
          row.vigil = 0;
          for (const auto& d : r.drops()) {
            if (d.netns() == st.st_ino) row.vigil += d.count();
          }
        } while (row.vigil < static_cast<uint64_t>(delta) && absl::Now() < deadline);
      }
      close(release[1]);
      close(report[0]);
      waitpid(child, nullptr, 0);
    }
    rows.push_back(row);
  }
  printf("udpdrops_bench: %d s flood, %d sender(s), %d CPUs, vigild --interval 1s\n\n", seconds,
         senders, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  printf(
      "| scenario | drops/s without vigild | drops/s with vigild | snmp delta | vigil count | "
      "exact | vigild CPU (%% of one core) |\n");
  printf("|---|---:|---:|---:|---:|:---:|---:|\n");
  bool all_exact = true;
  for (const Row& r : rows) {
    const bool exact = r.vigil == static_cast<uint64_t>(r.snmp);
    all_exact &= exact;
    printf("| %s | %.0f | %.0f | %lld | %llu | %s | %.2f |\n", r.name.c_str(), r.rate_base, r.rate,
           static_cast<long long>(r.snmp), static_cast<unsigned long long>(r.vigil),
           exact ? "yes" : "NO", r.cpu_pct);
  }
  return all_exact ? 0 : 1;
}
