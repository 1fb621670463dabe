#include "tests/udp_netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vigil::test {
namespace {

bool BringUpLoopback() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr = {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  const bool ok = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

sockaddr_storage Loopback(bool ipv6, uint16_t port, socklen_t* len) {
  sockaddr_storage ss = {};
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    *len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    *len = sizeof(*a);
  }
  return ss;
}

// Runs in the child, inside the new namespace. Returns "" or an error.
std::string RunScenario(const UdpScenario& s, int* keep_fd) {
  const int af = s.ipv6 ? AF_INET6 : AF_INET;
  socklen_t len = 0;
  sockaddr_storage dst = Loopback(s.ipv6, s.port, &len);
  if (s.kind == UdpScenario::kRcvbufFull) {
    int r = socket(af, SOCK_DGRAM, 0);
    int one = 1;  // the kernel raises it to its minimum
    if (r < 0 || setsockopt(r, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)) != 0 ||
        bind(r, reinterpret_cast<sockaddr*>(&dst), len) != 0) {
      return absl::StrCat("receiver: ", strerror(errno));
    }
    *keep_fd = r;  // held, never read, until the run ends
  }
  std::vector<char> buf(s.payload + 8, 'x');
  int fd;
  if (s.kind == UdpScenario::kBadCsum) {
    fd = socket(af, SOCK_RAW, IPPROTO_UDP);
    // A UDP header with a checksum that cannot be right for this payload
    // (and is not 0, which means "none" over IPv4).
    uint16_t hdr[4] = {htons(40000), htons(s.port), htons(static_cast<uint16_t>(buf.size())),
                       htons(0x1234)};
    memcpy(buf.data(), hdr, sizeof(hdr));
    if (s.ipv6) {
      reinterpret_cast<sockaddr_in6*>(&dst)->sin6_port = 0;
    } else {
      reinterpret_cast<sockaddr_in*>(&dst)->sin_port = 0;
    }
  } else {
    fd = socket(af, SOCK_DGRAM, 0);
    buf.resize(s.payload);
  }
  if (fd < 0) return absl::StrCat("sender: ", strerror(errno));
  const int ports = s.kind == UdpScenario::kRcvbufFull ? 1 : s.ports;
  for (int p = 0; p < ports; ++p) {
    const uint16_t port = static_cast<uint16_t>(s.port + p);
    if (s.kind == UdpScenario::kBadCsum) {
      const uint16_t be = htons(port);
      memcpy(buf.data() + 2, &be, 2);
    } else if (s.ipv6) {
      reinterpret_cast<sockaddr_in6*>(&dst)->sin6_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in*>(&dst)->sin_port = htons(port);
    }
    for (int i = 0; i < s.datagrams; ++i) {
      // Unconnected: ICMP port unreachable answers do not fail later sends.
      if (sendto(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&dst), len) < 0) {
        return absl::StrCat("sendto: ", strerror(errno));
      }
    }
  }
  close(fd);
  return "";
}

}  // namespace

std::map<std::string, int64_t> ReadUdpSnmp() {
  std::map<std::string, int64_t> out;
  std::ifstream snmp("/proc/self/net/snmp");
  std::string line, header;
  while (std::getline(snmp, line)) {
    if (line.rfind("Udp: ", 0) != 0) continue;
    if (header.empty()) {
      header = line;
      continue;
    }
    std::vector<std::string> names = absl::StrSplit(header, ' ', absl::SkipEmpty());
    std::vector<std::string> values = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 1; i < names.size() && i < values.size(); ++i) {
      int64_t v = 0;
      if (absl::SimpleAtoi(values[i], &v)) out["Udp:" + names[i]] = v;
    }
    break;
  }
  std::ifstream snmp6("/proc/self/net/snmp6");
  while (std::getline(snmp6, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t v = 0;
    if (f.size() == 2 && f[0].rfind("Udp6", 0) == 0 && absl::SimpleAtoi(f[1], &v)) out[f[0]] = v;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<NetnsUdpRun>> NetnsUdpRun::Start(const UdpScenario& s) {
  int result_pipe[2], release_pipe[2];
  if (pipe2(result_pipe, O_CLOEXEC) != 0 || pipe2(release_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    close(result_pipe[0]);
    close(release_pipe[1]);
    std::string report;
    int keep_fd = -1;
    if (unshare(CLONE_NEWNET) != 0) {
      report = absl::StrCat("error unshare(CLONE_NEWNET): ", strerror(errno));
    } else if (!BringUpLoopback()) {
      report = absl::StrCat("error bringing up lo: ", strerror(errno));
    } else {
      std::map<std::string, int64_t> before = ReadUdpSnmp();
      std::string err = RunScenario(s, &keep_fd);
      std::map<std::string, int64_t> after = ReadUdpSnmp();
      if (!err.empty()) {
        report = "error " + err;
      } else {
        report = "ok";
        for (const auto& [k, v] : after) {
          if (v != before[k]) absl::StrAppend(&report, " ", k, "=", v - before[k]);
        }
      }
    }
    report += "\n";
    (void)!write(result_pipe[1], report.data(), report.size());
    char c;
    (void)!read(release_pipe[0], &c, 1);  // EOF when the parent lets go
    _exit(0);
  }
  close(result_pipe[1]);
  close(release_pipe[0]);
  std::unique_ptr<NetnsUdpRun> run(new NetnsUdpRun());
  run->pid_ = pid;
  run->release_fd_ = release_pipe[1];
  std::string report;
  char buf[4096];
  ssize_t n;
  while ((n = read(result_pipe[0], buf, sizeof(buf))) > 0) {
    report.append(buf, n);
    if (report.back() == '\n') break;
  }
  close(result_pipe[0]);
  if (report.rfind("ok", 0) != 0) {
    return absl::InternalError(absl::StrCat("netns child: ", report.empty() ? "died" : report));
  }
  for (absl::string_view kv :
       absl::StrSplit(report.substr(2), absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
    int64_t v = 0;
    if (absl::SimpleAtoi(p.second, &v)) run->deltas_[p.first] = v;
  }
  struct stat st;
  const std::string ns = absl::StrCat("/proc/", pid, "/ns/net");
  if (stat(ns.c_str(), &st) != 0)
    return absl::InternalError(absl::StrCat("stat ", ns, ": ", strerror(errno)));
  run->netns_ = st.st_ino;
  return run;
}

int64_t NetnsUdpRun::Delta(const std::string& name) const {
  auto it = deltas_.find(name);
  return it == deltas_.end() ? 0 : it->second;
}

NetnsUdpRun::~NetnsUdpRun() {
  if (release_fd_ >= 0) close(release_fd_);
  if (pid_ > 0) {
    int status;
    if (waitpid(pid_, &status, 0) != pid_) kill(pid_, SIGKILL);
  }
}

}  // namespace vigil::test
