// Query latency (issue 16): every query kind over a full window on a busy
// host, alone and with concurrent clients; p50, p95 and p99 per kind.
//
//   query_bench [--fill S] [--processes N] [--threads N] [--calls N]
//               [--clients N] [--seconds S] [--vigild-arg ARG]...
//
// The host: --processes processes of --threads threads each, every thread
// making a syscall every ~200 ms (thousands of threads for the syscalls
// table), one process per CPU burning in user space (the profiler's
// samples), 100 UDP datagrams/s to a closed port (drops). vigild runs at
// its defaults with a 1 s interval; after --fill seconds (600: the whole
// default window) three phases run:
//
// - alone: each kind, --calls calls one after another, every request
//   distinct (see Distinct) so none is answered from another's merge: the
//   cost of a merge over the full window;
// - --clients clients asking the same queries (each client rotates through
//   the kinds): what a fleet view or dashboards do, where identical
//   queries share one merge;
// - --clients clients each asking its own distinct queries: the worst
//   case, where nothing can be shared.
//
// End to end is the client's time per call (connection kept); inside the
// agent is the response's query_ns (every kind but alerts). Exit 0 unless a call
// failed other than by its deadline.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/rpc_mix.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

struct Options {
  int64_t fill = 600;
  int64_t processes = 500;
  int64_t threads = 6;
  int64_t calls = 40;
  int64_t clients = 50;
  int64_t seconds = 60;
  std::vector<std::string> vigild_args;
};

// The busy host's processes: forked before any thread of ours exists, each
// killed with us (PR_SET_PDEATHSIG) and by the destructor.
class Host {
 public:
  Host(int processes, int threads) {
    for (int i = 0; i < processes; ++i) Fork([threads] { SyscallThreads(threads); });
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < cpus; ++i) Fork([] { Burn(); });
  }
  ~Host() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
  }
  size_t size() const { return pids_.size(); }

 private:
  void Fork(const std::function<void()>& body) {
    const pid_t parent = getpid();
    const pid_t p = fork();
    if (p == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      body();
      _exit(0);
    }
    if (p > 0) pids_.push_back(p);
  }
  static void SyscallThreads(int n) {
    std::vector<std::thread> th;
    for (int i = 0; i < n; ++i) {
      th.emplace_back([i] {
        while (true) {
          syscall(SYS_getppid);
          usleep(150000 + 10000 * static_cast<useconds_t>(i));
        }
      });
    }
    for (auto& t : th) t.join();
  }
  // Nested calls, so stacks have depth.
  __attribute__((noinline)) static uint64_t Leaf(uint64_t x) {
    for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
  }
  __attribute__((noinline)) static uint64_t Mid(uint64_t x) { return Leaf(x) ^ Leaf(x + 1); }
  static void Burn() {
    if (nice(19) == -1) {
    }
    volatile uint64_t sink = 0;
    for (uint64_t x = 1;; ++x) sink = sink + Mid(x);
  }
  std::vector<pid_t> pids_;
};

class Latencies {
 public:
  void Add(absl::Duration d) { v_.push_back(d); }
  size_t size() const { return v_.size(); }
  // "p50 / p95 / p99" in ms, "-" for none.
  std::string Row() {
    if (v_.empty()) return "-";
    std::sort(v_.begin(), v_.end());
    auto pct = [this](size_t p) {
      return absl::ToDoubleMilliseconds(v_[std::min(v_.size() - 1, v_.size() * p / 100)]);
    };
    return absl::StrFormat("%.1f / %.1f / %.1f", pct(50), pct(95), pct(99));
  }

 private:
  std::vector<absl::Duration> v_;
};

// One call of `kind`; `variant` > 0 makes the request distinct from every
// other variant's (a range a few microseconds shorter than the window:
// the same intervals, bytes no other request has), 0 is the plain request.
struct Call {
  grpc::Status status;
  absl::Duration latency;
  int64_t agent_ns = -1;  // the response's query_ns (ListAlerts has none)
};

const char* const kKinds[] = {"hot",    "profile", "syscalls", "syscalls --by syscall",
                              "memory", "drops",   "alerts"};

Call Do(v1::Vigil::Stub& stub, int kind, uint64_t variant, absl::Duration window) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::TimeRange range;
  if (variant > 0) {
    range.set_since_ago_ns(absl::ToInt64Nanoseconds(window) - static_cast<int64_t>(variant) * 1000);
  }
  Call c;
  const absl::Time t0 = absl::Now();
  switch (kind) {
    case 0: {
      v1::HotRequest req;
      *req.mutable_range() = range;
      v1::HotResponse r;
      c.status = stub.GetHot(&ctx, req, &r);
      c.agent_ns = r.query_ns();
      break;
    }
    case 1: {
      v1::ProfileRequest req;
      *req.mutable_range() = range;
      v1::ProfileResponse r;
      c.status = stub.GetProfile(&ctx, req, &r);
      c.agent_ns = r.query_ns();
      break;
    }
    case 2:
    case 3: {
      v1::SyscallsRequest req;
      *req.mutable_range() = range;
      if (kind == 3) req.set_group_by(v1::SYSCALL_GROUP_BY_SYSCALL);
      v1::SyscallsResponse r;
      c.status = stub.GetSyscalls(&ctx, req, &r);
      c.agent_ns = r.query_ns();
      break;
    }
    case 4: {
      v1::MemoryRequest req;
      *req.mutable_range() = range;
      v1::MemoryResponse r;
      c.status = stub.GetMemory(&ctx, req, &r);
      c.agent_ns = r.query_ns();
      break;
    }
    case 5: {
      v1::DropsRequest req;
      *req.mutable_range() = range;
      v1::DropsResponse r;
      c.status = stub.GetDrops(&ctx, req, &r);
      c.agent_ns = r.query_ns();
      break;
    }
    default: {
      v1::ListAlertsResponse r;
      c.status = stub.ListAlerts(&ctx, v1::ListAlertsRequest(), &r);
      break;
    }
  }
  c.latency = absl::Now() - t0;
  return c;
}

constexpr int kKindCount = sizeof(kKinds) / sizeof(kKinds[0]);

struct Phase {
  Latencies e2e[kKindCount];
  Latencies agent[kKindCount];
  uint64_t ok = 0, late = 0, failed = 0;
  std::string first_error;
};

void Record(Phase* p, int kind, const Call& c) {
  if (c.status.ok()) {
    ++p->ok;
    p->e2e[kind].Add(c.latency);
    if (c.agent_ns >= 0) p->agent[kind].Add(absl::Nanoseconds(c.agent_ns));
  } else if (c.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ++p->late;
  } else {
    ++p->failed;
    if (p->first_error.empty()) p->first_error = c.status.error_message();
  }
}

// `clients` clients for `seconds`, client i's n-th call is kind n % K (each
// client starts at its own kind); distinct: every call its own request.
Phase Load(const std::string& agent, int clients, int64_t seconds, bool distinct,
           absl::Duration window) {
  Phase p;
  absl::Mutex mu;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> next_variant{1};
  std::vector<std::thread> th;
  for (int i = 0; i < clients; ++i) {
    th.emplace_back([&, i] {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);
      auto stub = v1::Vigil::NewStub(
          grpc::CreateCustomChannel(agent, grpc::InsecureChannelCredentials(), args));
      for (uint64_t n = static_cast<uint64_t>(i); !stop.load(); ++n) {
        const int kind = static_cast<int>(n % kKindCount);
        const Call c = Do(*stub, kind, distinct ? next_variant++ : 0, window);
        absl::MutexLock l(&mu);
        Record(&p, kind, c);
      }
    });
  }
  absl::SleepFor(absl::Seconds(seconds));
  stop = true;
  for (auto& t : th) t.join();
  return p;
}

int Run(const Options& o) {
  const absl::Duration window = absl::Minutes(10);
  // Forked before vigild and before any thread of ours.
  Host host(static_cast<int>(o.processes), static_cast<int>(o.threads));
  std::vector<std::string> args = {"--interval", "1s"};
  args.insert(args.end(), o.vigild_args.begin(), o.vigild_args.end());
  test::ScopedVigild agent(args);
  if (!agent.ok()) {
    fprintf(stderr, "query_bench: vigild did not start: %s\n", agent.log().c_str());
    return 1;
  }
  const int udp = socket(AF_INET, SOCK_DGRAM, 0);
  const uint16_t closed_port = static_cast<uint16_t>(test::FreeLoopbackPort());
  std::atomic<bool> stop{false};
  std::thread drops([&] {
    while (!stop.load()) {
      test::SendToClosedPort(udp, closed_port);
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  fprintf(stderr,
          "query_bench: %zu processes (%ld x %ld syscall threads, a burner per CPU), vigild pid "
          "%d; filling the window for %ld s\n",
          host.size(), static_cast<long>(o.processes), static_cast<long>(o.threads), agent.pid(),
          static_cast<long>(o.fill));
  for (int64_t t = 0; t < o.fill; t += 60) {
    absl::SleepFor(absl::Seconds(std::min<int64_t>(60, o.fill - t)));
    fprintf(stderr, "query_bench: %ld / %ld s\n", static_cast<long>(std::min(t + 60, o.fill)),
            static_cast<long>(o.fill));
  }

  auto stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::StatusResponse s;
    if (stub->GetStatus(&ctx, v1::StatusRequest(), &s).ok()) {
      const double held_s =
          s.oldest_unix_ns() > 0
              ? absl::ToDoubleSeconds(absl::Now() - absl::FromUnixNanos(s.oldest_unix_ns()))
              : 0.0;
      printf(
          "query_bench: store: %u syscall intervals retained, the oldest from %.0f s ago; records "
          "dropped at the caps: syscalls %lu, profile %lu, memory %lu\n",
          s.intervals_retained(), held_s,
          static_cast<unsigned long>(s.syscall_loss().store_dropped()),
          static_cast<unsigned long>(s.profiler().loss().store_dropped()),
          static_cast<unsigned long>(s.memory_loss().store_dropped()));
    }
  }

  Phase alone;
  uint64_t variant = 1u << 20;
  for (int k = 0; k < kKindCount; ++k) {
    for (int64_t i = 0; i < o.calls; ++i) Record(&alone, k, Do(*stub, k, variant++, window));
  }
  fprintf(stderr, "query_bench: %ld clients, the same queries, %ld s\n",
          static_cast<long>(o.clients), static_cast<long>(o.seconds));
  Phase same = Load(agent.agent(), static_cast<int>(o.clients), o.seconds, false, window);
  fprintf(stderr, "query_bench: %ld clients, distinct queries, %ld s\n",
          static_cast<long>(o.clients), static_cast<long>(o.seconds));
  Phase distinct = Load(agent.agent(), static_cast<int>(o.clients), o.seconds, true, window);
  stop = true;
  drops.join();
  close(udp);

  printf("\nquery_bench: full %s window, p50 / p95 / p99 in ms, end to end (inside the agent)\n",
         absl::FormatDuration(window).c_str());
  printf("| kind | alone (distinct) | %ld clients, same queries | %ld clients, distinct |\n",
         static_cast<long>(o.clients), static_cast<long>(o.clients));
  printf("|---|---:|---:|---:|\n");
  for (int k = 0; k < kKindCount; ++k) {
    auto cell = [k](Phase& p) {
      return p.agent[k].size() == 0 ? p.e2e[k].Row()
                                    : absl::StrCat(p.e2e[k].Row(), " (", p.agent[k].Row(), ")");
    };
    printf("| %s | %s | %s | %s |\n", kKinds[k], cell(alone).c_str(), cell(same).c_str(),
           cell(distinct).c_str());
  }
  bool pass = true;
  for (auto [name, p] : {std::pair<const char*, Phase*>{"alone", &alone},
                         {"same", &same},
                         {"distinct", &distinct}}) {
    printf("query_bench: %s: %lu answers, %lu past their 10 s deadline, %lu failed%s%s\n", name,
           static_cast<unsigned long>(p->ok), static_cast<unsigned long>(p->late),
           static_cast<unsigned long>(p->failed), p->first_error.empty() ? "" : ": ",
           p->first_error.c_str());
    if (p->failed > 0) pass = false;
  }
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace vigil

int main(int argc, char** argv) {
  vigil::Options o;
  for (int i = 1; i < argc; ++i) {
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--fill", 0, 3600, &o.fill)) continue;
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--processes", 0, 5000, &o.processes))
      continue;
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--threads", 1, 64, &o.threads))
      continue;
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--calls", 1, 100000, &o.calls))
      continue;
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--clients", 1, 1000, &o.clients))
      continue;
    if (vigil::test::IntFlag("query_bench", argc, argv, &i, "--seconds", 1, 3600, &o.seconds))
      continue;
    if (std::string(argv[i]) == "--vigild-arg" && i + 1 < argc) {
      o.vigild_args.push_back(argv[++i]);
      continue;
    }
    fprintf(stderr, "query_bench: unknown argument \"%s\" (see the comment at the top)\n", argv[i]);
    return 2;
  }
  return vigil::Run(o);
}
