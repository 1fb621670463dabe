// 50 concurrent clients calling every RPC against one agent with every
// capability on, for 60 s (VIGIL_LOAD_SECONDS to change): every answer is
// correct, no descriptor leaks, and the RSS level has no upward trend after
// warm-up.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "tests/rpc_mix.h"
#include "tests/test_util.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {
namespace {

// In-flight buffers (a merge's, gRPC's per call) lift single samples; a
// leak lifts the whole window.
// The lower quartile of a window of RSS samples: the level the agent
// returns to between query peaks. Not the minimum: one sample taken just
// after malloc_trim sits 8 MB under its neighbours (CI run of a31d501),
// and a floor made of that one sample reads as 6 MB of growth.
double LowQuartile(const std::vector<uint64_t>& v, size_t from, size_t to) {
  std::vector<uint64_t> w(v.begin() + from, v.begin() + to);
  std::nth_element(w.begin(), w.begin() + w.size() / 4, w.end());
  return static_cast<double>(w[w.size() / 4]);
}

TEST(LoadTest, FiftyClientsForAMinute) {
  VIGIL_REQUIRE_BPF();
  int seconds = 60;
  if (const char* s = getenv("VIGIL_LOAD_SECONDS")) {
    ASSERT_TRUE(absl::SimpleAtoi(s, &seconds));
    ASSERT_GE(seconds, 20) << "VIGIL_LOAD_SECONDS below 20 leaves no trend to measure";
  }

  // Every capability on, as deployed. A short window, and a short history
  // for the memory-growth detector (it keeps mem-growth-min-duration of
  // samples per process), fill within the warm-up, so a later rise is
  // growth, not bounded state filling.
  test::ScopedVigild agent(
      {"--interval", "200ms", "--window", "5s", "--mem-growth-min-duration", "5s"});
  ASSERT_TRUE(agent.ok()) << agent.log();
  absl::SleepFor(absl::Seconds(1));
  const int fds_before = test::OpenFds(agent.pid());
  const uint32_t me = static_cast<uint32_t>(getpid());

  // Ground truth for GetDrops: datagrams this test sends to a closed port.
  const int udp = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(udp, 0);
  const uint16_t closed_port = static_cast<uint16_t>(test::FreeLoopbackPort());

  constexpr int kClients = 50;
  constexpr int kWatchers = 2;  // clients holding a WatchAlerts stream open
  std::atomic<uint64_t> ok{0}, bad{0};
  std::atomic<bool> stop{false};
  absl::Mutex err_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    ++bad;
    absl::MutexLock l(&err_mu);
    if (errors.size() < 10) errors.push_back(what);
  };
  std::vector<std::thread> clients;
  // Ten of the agent's 200 ms intervals for the short range.
  const test::RpcMix mix(me, static_cast<uint32_t>(agent.pid()), udp, closed_port,
                         absl::Now() + absl::Seconds(3), absl::Seconds(2));
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      // Each client its own channel: 50 connections, not 50 streams on one.
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);
      auto stub = v1::Vigil::NewStub(
          grpc::CreateCustomChannel(agent.agent(), grpc::InsecureChannelCredentials(), args));
      for (uint64_t n = 0; !stop.load(); ++n) {
        const test::MixCall c =
            i < kWatchers ? test::WatchFor(*stub, absl::Seconds(3)) : mix.Next(*stub, n);
        if (c.status.ok() && c.insane.empty()) {
          ++ok;
        } else {
          fail(c.status.ok() ? c.insane : absl::StrCat(c.method, ": ", c.status.error_message()));
        }
      }
    });
  }

  // RSS once a second after a warm-up (the first quarter, at least 10 s),
  // in three equal windows. The window, the symbol caches and malloc's
  // arenas may still step up during the first; a leak keeps growing, so the
  // last window's lower quartile must match the middle one's: a plateau, not a
  // ceiling (a fixed maximum lets a slow leak through and fails a host
  // whose level is merely higher).
  // The agent's own heap figures beside each RSS sample say whether a rise
  // is allocated memory (a leak) or memory malloc kept after a peak.
  const int warm = std::max(10, seconds / 4);
  std::vector<uint64_t> rss, heap_used, heap_free;
  auto status_stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  for (int t = 0; t < seconds; ++t) {
    absl::SleepFor(absl::Seconds(1));
    if (t < warm) continue;
    rss.push_back(test::RssKb(agent.pid()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::StatusRequest req;
    v1::StatusResponse st;
    if (status_stub->GetStatus(&ctx, req, &st).ok()) {
      heap_used.push_back(st.heap_in_use_bytes() / 1024);
      heap_free.push_back(st.heap_free_bytes() / 1024);
    }
  }
  stop = true;
  for (auto& t : clients) t.join();
  close(udp);

  EXPECT_EQ(bad.load(), 0u) << absl::StrJoin(errors, "; ");
  EXPECT_GT(ok.load(), static_cast<uint64_t>(kClients) * seconds / 10) << "too few answers";
  const size_t third = rss.size() / 3;
  const double first = LowQuartile(rss, third, 2 * third);
  const double second = LowQuartile(rss, 2 * third, rss.size());
  // 2% of the level, at least 2 MiB: malloc's trims and gRPC's
  // per-connection buffers. The windows' centres are 15 s apart in CI's
  // 60 s run. A leak of 800 kB/s (about 1 kB per answer) injected into
  // vigild with LD_PRELOAD failed it by 14 MB; one of 200 kB/s failed one
  // run of two. Slower leaks are the soak's (tests/bench/soak.sh) to find.
  const double allowed = std::max(first * 0.02, 2048.0);
  EXPECT_LE(second - first, allowed)
      << "RSS still rising after warm-up: middle window lower quartile " << first
      << " kB, last window lower quartile " << second
      << " kB; samples (kB): " << absl::StrJoin(rss, " ")
      << "; heap in use (kB): " << absl::StrJoin(heap_used, " ")
      << "; heap free (kB): " << absl::StrJoin(heap_free, " ");
  // Connections are gone once the clients are: no descriptor leaks.
  bool fds_ok = false;
  for (int i = 0; i < 50 && !fds_ok; ++i) {
    fds_ok = test::OpenFds(agent.pid()) <= fds_before + 2;
    if (!fds_ok) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(fds_ok) << test::OpenFds(agent.pid()) << " fds open, " << fds_before << " before";
  printf(
      "load: %d clients, %d s, %lu answers, rss after warm-up %lu kB, window lower quartiles 2 -> "
      "3: "
      "%.0f -> %.0f kB\n",
      kClients, seconds, static_cast<unsigned long>(ok.load()),
      static_cast<unsigned long>(rss.empty() ? 0 : rss.front()), first, second);
  printf("load: rss samples (kB): %s\n", absl::StrJoin(rss, " ").c_str());
  printf("load: heap in use (kB): %s\n", absl::StrJoin(heap_used, " ").c_str());
  printf("load: heap free (kB): %s\n", absl::StrJoin(heap_free, " ").c_str());
}

}  // namespace
}  // namespace vigil
