#include "tests/rpc_mix.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vigil::test {

MixCall RpcMix::Next(v1::Vigil::Stub& stub, uint64_t n) const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  MixCall c;
  v1::TimeRange range;
  if (n % 2) range.set_since_ago_ns(absl::ToInt64Nanoseconds(recent_));
  const absl::Time t0 = absl::Now();
  switch (n % 9) {
    case 0:
    case 1:
    case 2: {
      c.method = "GetSyscalls";
      v1::SyscallsRequest req;
      req.set_group_by(static_cast<v1::SyscallGroupBy>(1 + n % 3));
      req.set_top(5);
      *req.mutable_range() = range;
      v1::SyscallsResponse r;
      c.status = stub.GetSyscalls(&ctx, req, &r);
      // The host is never silent: the agent's own threads make syscalls.
      if (c.status.ok() &&
          !(r.covered().intervals() > 0 && r.threads_size() > 0 && r.threads_size() <= 5)) {
        c.insane = absl::StrCat(
            "GetSyscalls over ", n % 2 ? absl::FormatDuration(recent_) : "the window", ": ",
            r.covered().intervals(), " intervals, ", r.threads_size(), " rows (top 5)");
      }
      break;
    }
    case 3: {
      // The caller's own syscalls (the clients' sendmsg/recvmsg).
      c.method = "GetSyscalls";
      v1::SyscallsRequest req;
      req.set_pid(self_);
      req.set_group_by(v1::SYSCALL_GROUP_BY_PROCESS);
      v1::SyscallsResponse r;
      c.status = stub.GetSyscalls(&ctx, req, &r);
      if (r.threads_size() != 1 || r.threads(0).pid() != self_ || r.threads(0).total_calls() == 0) {
        c.insane = "GetSyscalls --pid self: the caller missing";
      }
      break;
    }
    case 4: {
      c.method = "GetStatus";
      v1::StatusResponse r;
      c.status = stub.GetStatus(&ctx, v1::StatusRequest(), &r);
      if (r.capabilities_size() < 5) c.insane = "GetStatus: capabilities missing";
      for (const auto& cap : r.capabilities()) {
        // Off by the agent's configuration (trace and probe are, unless
        // allowed) is a choice; off for any other reason is a failure.
        if (cap.state() == v1::CAPABILITY_STATE_OFF &&
            !absl::StartsWith(cap.reason(), "disabled ("))
          c.insane = absl::StrCat("GetStatus: ", cap.name(), " off: ", cap.reason());
      }
      break;
    }
    case 5: {
      c.method = "GetHot";
      v1::HotRequest req;
      req.set_top(10);
      *req.mutable_range() = range;
      v1::HotResponse r;
      c.status = stub.GetHot(&ctx, req, &r);
      // Two cores busy with the clients: once they have run a moment (the
      // first intervals saw idle CPUs, counted, not kept), the profiler
      // always has samples.
      if (r.functions_size() > 10) c.insane = "GetHot: over top";
      if (absl::Now() > absl::FromUnixNanos(busy_since_ns_) &&
          (r.samples() == 0 || r.functions_size() == 0)) {
        c.insane = "GetHot: no samples under load";
      }
      break;
    }
    case 6: {
      c.method = "GetProfile";
      v1::ProfileRequest req;
      req.set_pid(agent_);
      *req.mutable_range() = range;
      v1::ProfileResponse r;
      c.status = stub.GetProfile(&ctx, req, &r);
      for (const auto& st : r.stacks()) {
        for (uint32_t id : st.frame_ids()) {
          if (static_cast<int>(id) >= r.frames_size())
            c.insane = "GetProfile: frame id out of range";
        }
      }
      break;
    }
    case 7: {
      // The agent's own memory: it is always among the processes sampled.
      c.method = "GetMemory";
      v1::MemoryRequest req;
      req.set_pid(agent_);
      *req.mutable_range() = range;
      v1::MemoryResponse r;
      c.status = stub.GetMemory(&ctx, req, &r);
      if (r.processes_size() != 1 || r.processes(0).pid() != agent_ ||
          r.processes(0).rss_bytes() == 0) {
        c.insane = "GetMemory --pid agent: the agent missing";
      }
      break;
    }
    default: {
      if (n % 18 == 8) {
        c.method = "ListAlerts";
        v1::ListAlertsResponse r;
        c.status = stub.ListAlerts(&ctx, v1::ListAlertsRequest(), &r);
        break;
      }
      c.method = "GetDrops";
      SendToClosedPort(udp_fd_, closed_port_);
      v1::DropsResponse r;
      c.status = stub.GetDrops(&ctx, v1::DropsRequest(), &r);
      if (r.covered().intervals() == 0) c.insane = "GetDrops: no intervals";
      break;
    }
  }
  c.latency = absl::Now() - t0;
  return c;
}

MixCall WatchFor(v1::Vigil::Stub& stub, absl::Duration hold) {
  MixCall c;
  c.method = "WatchAlerts";
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + hold));
  v1::WatchAlertsRequest req;
  req.set_include_active(true);
  const absl::Time t0 = absl::Now();
  auto reader = stub.WatchAlerts(&ctx, req);
  v1::SpinAlert a;
  while (reader->Read(&a)) {
  }
  grpc::Status s = reader->Finish();
  // The deadline ends the stream; anything else is an error.
  c.status = s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::Status::OK : s;
  c.latency = absl::Now() - t0;
  return c;
}

RssParts ReadRssParts(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  RssParts p;
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") f >> p.rss;
    if (key == "RssAnon:") f >> p.anon;
    if (key == "RssFile:") f >> p.file;
    if (key == "RssShmem:") {
      f >> p.shmem;
      break;  // the last of them
    }
  }
  return p;
}

uint64_t RssKb(pid_t pid) { return ReadRssParts(pid).rss; }

HeapKb AgentHeapKb(v1::Vigil::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::StatusResponse st;
  HeapKb h;
  h.ok = stub.GetStatus(&ctx, v1::StatusRequest(), &st).ok();
  if (h.ok) {
    h.in_use = st.heap_in_use_bytes() / 1024;
    h.free = st.heap_free_bytes() / 1024;
    h.memo_addrs = st.profiler().symbol_memo_addrs();
  }
  return h;
}

int OpenFds(pid_t pid) {
  int n = 0;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 2;
}

double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  // Fields after the comm's closing parenthesis: state is 3rd, utime 14th.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void SendToClosedPort(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
}

}  // namespace vigil::test
