// 50 concurrent clients calling every RPC against one agent with every
// capability on, for 60 s (VIGIL_LOAD_SECONDS to change): every answer is
// correct, no descriptor leaks, and the agent's RSS at rest does not rise
// between a rest after warm-up and a rest after more load.
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

// The median of a rest's samples: its level.
double Median(std::vector<uint64_t> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return static_cast<double>(v[v.size() / 2]);
}

TEST(LoadTest, FiftyClientsForAMinute) {
  VIGIL_REQUIRE_BPF();
  int seconds = 60;
  if (const char* s = getenv("VIGIL_LOAD_SECONDS")) {
    ASSERT_TRUE(absl::SimpleAtoi(s, &seconds));
    ASSERT_GE(seconds, 45) << "VIGIL_LOAD_SECONDS below 45 leaves no trend to measure";
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
  std::atomic<bool> stop{false}, resting{false};
  absl::Mutex err_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    ++bad;
    absl::MutexLock l(&err_mu);
    if (errors.size() < 10) errors.push_back(what);
  };
  std::vector<std::thread> clients;
  // Ten of the agent's 200 ms intervals for the short range.
  test::RpcMix mix(me, static_cast<uint32_t>(agent.pid()), udp, closed_port,
                   absl::Now() + absl::Seconds(3), absl::Seconds(2));
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      // Each client its own channel: 50 connections, not 50 streams on one.
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);
      auto stub = v1::Vigil::NewStub(
          grpc::CreateCustomChannel(agent.agent(), grpc::InsecureChannelCredentials(), args));
      for (uint64_t n = 0; !stop.load(); ++n) {
        if (resting.load()) {
          absl::SleepFor(absl::Milliseconds(100));
          continue;
        }
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

  // RSS is judged at rest, not under load. Under 50 clients a sample
  // lands on whatever merges are in flight: in CI samples taken a second
  // apart spread over 12 MB (76-88 MB), and a rise of one window's lower
  // quartile over the next failed runs whose heap in use was flat (CI of
  // d58706d). At rest the in-flight buffers are gone, the window has aged
  // out its loaded intervals, and the agent has handed freed heap back
  // (malloc_trim every 5 s), so RSS is what the agent keeps.
  // Warm-up under load (caches, arenas and the window fill), rest A, load
  // again, rest B: a leak grows with the answers between A and B.
  const int warm = std::max(15, seconds / 4);
  const absl::Duration rest = absl::Seconds(14);
  const absl::Duration settle = absl::Seconds(10);  // in-flight calls, window, one trim
  const absl::Duration loaded = absl::Seconds(seconds - warm) - 2 * rest;
  auto status_stub =
      v1::Vigil::NewStub(grpc::CreateChannel(agent.agent(), grpc::InsecureChannelCredentials()));
  struct Level {
    std::vector<uint64_t> rss, heap_used, heap_free;
  };
  auto rest_level = [&](Level& l) {
    resting = true;
    absl::SleepFor(settle);
    for (absl::Time end = absl::Now() + rest - settle; absl::Now() < end;) {
      absl::SleepFor(absl::Milliseconds(500));
      l.rss.push_back(test::RssKb(agent.pid()));
      if (const test::HeapKb h = test::AgentHeapKb(*status_stub); h.ok) {
        l.heap_used.push_back(h.in_use);
        l.heap_free.push_back(h.free);
      }
    }
    // The profiler needs the loaded CPUs for a moment again (the rest's
    // intervals saw idle CPUs, counted, not kept).
    mix.BusyAgainFrom(absl::Now() + absl::Seconds(3));
    resting = false;
  };
  absl::SleepFor(absl::Seconds(warm));
  Level a, b;
  rest_level(a);
  const uint64_t answers_after_a = ok.load();
  absl::SleepFor(loaded);
  const uint64_t answers_between = ok.load() - answers_after_a;
  rest_level(b);
  stop = true;
  for (auto& t : clients) t.join();
  close(udp);

  EXPECT_EQ(bad.load(), 0u) << absl::StrJoin(errors, "; ");
  EXPECT_GT(ok.load(), static_cast<uint64_t>(kClients) * seconds / 10) << "too few answers";
  ASSERT_FALSE(a.rss.empty() || b.rss.empty());
  const double first = Median(a.rss);
  const double second = Median(b.rss);
  // 2% of the level, at least 2 MiB. Without a leak the rests differ by
  // -0.5 to +1.0 MB on this 2-core VM (the profiler's symbol memos still
  // filling; heaptrack shows no other site growing). A 100 kB/s leak
  // injected into vigild with LD_PRELOAD failed it: 59.8 -> 63.9 MB.
  const double allowed = std::max(first * 0.02, 2048.0);
  auto show = [](const Level& l) {
    return absl::StrCat("rss (kB) ", absl::StrJoin(l.rss, " "), "; heap in use (kB) ",
                        absl::StrJoin(l.heap_used, " "), "; heap free (kB) ",
                        absl::StrJoin(l.heap_free, " "));
  };
  EXPECT_LE(second - first, allowed)
      << "RSS at rest rose after " << answers_between << " answers: " << first << " -> " << second
      << " kB. Rest A: " << show(a) << ". Rest B: " << show(b);
  // Connections are gone once the clients are: no descriptor leaks.
  bool fds_ok = false;
  for (int i = 0; i < 50 && !fds_ok; ++i) {
    fds_ok = test::OpenFds(agent.pid()) <= fds_before + 2;
    if (!fds_ok) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(fds_ok) << test::OpenFds(agent.pid()) << " fds open, " << fds_before << " before";
  printf(
      "load: %d clients, %d s, %lu answers (%lu between the rests), rss at rest %.0f -> %.0f kB\n",
      kClients, seconds, static_cast<unsigned long>(ok.load()),
      static_cast<unsigned long>(answers_between), first, second);
  printf("load: rest A: %s\n", show(a).c_str());
  printf("load: rest B: %s\n", show(b).c_str());
}

}  // namespace
}  // namespace vigil
