// 50 concurrent clients against one agent for 60 s (VIGIL_LOAD_SECONDS to
// change): every answer is correct, no descriptor leaks, RSS stays flat.
#include <dirent.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

uint64_t RssKb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  uint64_t kb = 0;
  while (f >> key) {
    if (key == "VmRSS:") {
      f >> kb;
      break;
    }
  }
  return kb;
}

int OpenFds(pid_t pid) {
  int n = 0;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 2;
}

TEST(LoadTest, FiftyClientsForAMinute) {
  std::string why = test::BpfUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << "BPF not permitted here: " << why;
  int seconds = 60;
  if (const char* s = getenv("VIGIL_LOAD_SECONDS")) {
    ASSERT_TRUE(absl::SimpleAtoi(s, &seconds));
  }

  // A short window fills within the warm-up, so later RSS growth would be a
  // leak rather than the window filling with data. The profiler is off: its
  // bounded symbol caches (up to 16 MB of module tables) keep filling as it
  // names this test's 50 client threads, which would mask the serving path's
  // own growth; its memory is measured separately (tests/bench).
  test::ScopedVigild agent({"--interval", "200ms", "--window", "5s", "--profile", "off",
                            "--spin", "off"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  absl::SleepFor(absl::Seconds(1));
  const int fds_before = OpenFds(agent.pid());

  constexpr int kClients = 50;
  std::atomic<uint64_t> ok{0}, bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::string> first_error(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      // Each client its own channel: 50 connections, not 50 streams on one.
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);
      auto stub = v1::Vigil::NewStub(grpc::CreateCustomChannel(
          agent.agent(), grpc::InsecureChannelCredentials(), args));
      for (uint64_t n = 0; !stop.load(); ++n) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s;
        bool sane = false;
        if (n % 4 == 3) {
          v1::StatusResponse r;
          s = stub->GetStatus(&ctx, v1::StatusRequest(), &r);
          sane = r.capabilities_size() > 0;
        } else {
          v1::SyscallsRequest req;
          req.set_group_by(static_cast<v1::SyscallGroupBy>(1 + n % 3));
          req.set_top(5);
          if (n % 2) req.mutable_range()->set_since_ago_ns(int64_t{2} * 1000000000);  // < window
          v1::SyscallsResponse r;
          s = stub->GetSyscalls(&ctx, req, &r);
          // The host is never silent: the agent's own threads make syscalls.
          sane = r.covered().intervals() > 0 && r.threads_size() > 0 && r.threads_size() <= 5;
        }
        if (s.ok() && sane) {
          ++ok;
        } else {
          if (bad++ == 0 || first_error[i].empty()) {
            first_error[i] = s.ok() ? "insane answer" : s.error_message();
          }
        }
      }
    });
  }
  absl::SleepFor(absl::Seconds(std::min(10, seconds / 3)));
  const uint64_t rss_warm = RssKb(agent.pid());
  absl::SleepFor(absl::Seconds(seconds - std::min(10, seconds / 3)));
  const uint64_t rss_end = RssKb(agent.pid());
  stop = true;
  for (auto& t : clients) t.join();

  std::string errors;
  for (const auto& e : first_error) {
    if (!e.empty()) errors += e + "; ";
  }
  EXPECT_EQ(bad.load(), 0u) << errors;
  EXPECT_GT(ok.load(), static_cast<uint64_t>(kClients) * seconds / 10) << "too few answers";
  // Flat: after warm-up, at most 20% (and 8 MiB) more.
  EXPECT_LE(rss_end, std::max(rss_warm * 6 / 5, rss_warm + 8192))
      << "RSS grew from " << rss_warm << " kB to " << rss_end << " kB";
  // Connections are gone once the clients are: no descriptor leaks.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_LE(OpenFds(agent.pid()), fds_before + 2);
  printf("load: %d clients, %d s, %lu answers, rss %lu -> %lu kB\n", kClients, seconds,
         static_cast<unsigned long>(ok.load()), static_cast<unsigned long>(rss_warm),
         static_cast<unsigned long>(rss_end));
}

}  // namespace
}  // namespace vigil
