// vigild: the Vigil agent. Flags are parsed here and nowhere else; everything
// below takes an AgentConfig.
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/bpf_util.h"
#include "agent/config.h"
#include "agent/metrics/metrics_server.h"
#include "agent/preflight.h"
#include "agent/server/listen.h"
#include "agent/server/vigil_service.h"
#include "agent/settings.h"
#include "common/duration.h"
#include "common/state_names.h"

namespace {

constexpr char kUsageHead[] = R"(usage: vigild [options]

Vigil agent: always-on eBPF tracing. Loads its BPF programs, keeps a bounded
window of per-interval data in memory, and serves gRPC (vigil.v1).

Settings come from the config file (default /etc/vigil/vigild.conf, if it
exists; "key = value" lines with the option names below as keys), then from
flags, which override the file.

options:
  --config FILE                 config file (default /etc/vigil/vigild.conf)
  --check-config                validate the configuration and exit
)";

constexpr char kUsageTail[] = R"(  --version                   print the version and exit
  -h, --help                    this help

exit codes: 0 stopped cleanly, 1 could not start, 2 bad usage or configuration
)";

void PrintUsage() {
  fputs(kUsageHead, stdout);
  for (const vigil::SettingInfo& s : vigil::AllSettings()) {
    std::string left = absl::StrCat("  --", s.name, s.takes_value ? " VALUE" : "");
    printf("%-32s%s\n", left.c_str(), s.help);
  }
  fputs(kUsageTail, stdout);
}

[[noreturn]] void UsageError(const std::string& msg) {
  fprintf(stderr, "vigild: %s (see vigild --help)\n", msg.c_str());
  exit(2);
}

struct Flags {
  vigil::AgentConfig config;
  bool check_config = false;
  std::string config_path;
};

Flags ParseFlags(int argc, char** argv) {
  enum { kConfig = 1000, kCheckConfig, kVersion, kHelp, kFirstSetting };
  const auto& settings = vigil::AllSettings();
  std::vector<option> opts = {
      {"config", required_argument, nullptr, kConfig},
      {"check-config", no_argument, nullptr, kCheckConfig},
      {"version", no_argument, nullptr, kVersion},
      {"help", no_argument, nullptr, kHelp},
  };
  for (size_t i = 0; i < settings.size(); ++i) {
    opts.push_back({settings[i].name, settings[i].takes_value ? required_argument : no_argument,
                    nullptr, kFirstSetting + static_cast<int>(i)});
  }
  opts.push_back({nullptr, 0, nullptr, 0});

  Flags f;
  bool explicit_config = false;
  f.config_path = vigil::kDefaultConfigPath;
  std::vector<std::pair<std::string, std::string>> from_flags;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":h", opts.data(), nullptr)) != -1) {
    if (opt >= kFirstSetting) {
      const vigil::SettingInfo& s = settings[opt - kFirstSetting];
      from_flags.emplace_back(s.name, s.takes_value ? optarg : "true");
      continue;
    }
    switch (opt) {
      case kConfig:
        f.config_path = optarg;
        explicit_config = true;
        break;
      case kCheckConfig:
        f.check_config = true;
        break;
      case kVersion:
        printf("vigild %s\n", VIGIL_VERSION);
        exit(0);
      case kHelp:
      case 'h':
        PrintUsage();
        exit(0);
      case ':':
        UsageError(absl::StrCat("option ", vigil::QuoteValue(argv[optind - 1]), " needs a value"));
      default:
        // What was typed, cut and escaped: one short line.
        UsageError(absl::StrCat("unknown option ", vigil::QuoteValue(argv[optind - 1])));
    }
  }
  if (optind < argc) {
    UsageError(absl::StrCat("unexpected argument ", vigil::QuoteValue(argv[optind])));
  }

  // The file first, then flags on top of it.
  std::ifstream file(f.config_path);
  if (file) {
    std::stringstream text;
    text << file.rdbuf();
    if (absl::Status s = vigil::ApplyConfigText(text.str(), f.config_path, &f.config); !s.ok()) {
      UsageError(std::string(s.message()));
    }
  } else if (explicit_config) {
    UsageError(absl::StrCat("--config ", vigil::QuoteValue(f.config_path), ": cannot read"));
  } else {
    f.config_path.clear();  // no file: embedded defaults
  }
  for (const auto& [key, value] : from_flags) {
    if (absl::Status s = vigil::ApplySetting(key, value, &f.config); !s.ok()) {
      UsageError(absl::StrCat("--", s.message()));
    }
  }
  if (absl::Status s = vigil::ValidateConfig(f.config); !s.ok()) {
    UsageError(std::string(s.message()));
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  // One malloc arena per gRPC thread would keep tens of MB of freed query
  // memory resident; two arenas keep RSS near what is live.
  mallopt(M_ARENA_MAX, 2);
  // glibc raises its mmap threshold to the size of each large block freed
  // (up to 32 MiB), after which blocks that size come from the heap and stay
  // resident once freed. A fixed threshold keeps a merge's multi-MB buffers
  // mmapped and returned on free: under the load test RSS was 92-101 MB
  // without it, 75-83 MB with it.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  Flags flags = ParseFlags(argc, argv);
  vigil::AgentConfig& config = flags.config;
  if (flags.check_config) {
    printf("vigild: configuration OK (%s)\n",
           flags.config_path.empty() ? "embedded defaults" : flags.config_path.c_str());
    return 0;
  }

  // Block the stop signals in every thread (gRPC's included); main waits.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  if (config.test_stall_signal) sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Under systemd with WatchdogSec=, the collection loop pings the watchdog
  // once per interval: a hung loop stops the pings and systemd restarts us.
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    if (absl::Microseconds(watchdog_usec) < 2 * config.interval) {
      fprintf(stderr, "vigild: WatchdogSec (%s) must be at least twice the interval (%s)\n",
              absl::FormatDuration(absl::Microseconds(watchdog_usec)).c_str(),
              absl::FormatDuration(config.interval).c_str());
      return 2;
    }
    config.heartbeat = [] { sd_notify(0, "WATCHDOG=1"); };
  }
  signal(SIGPIPE, SIG_IGN);

  vigil::ConfigureLibbpfLogging(config.verbose);
  if (absl::Status s = vigil::RunPreflight(); !s.ok()) {
    fprintf(stderr, "vigild: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<vigil::Agent>> agent = vigil::Agent::Create(config);
  if (!agent.ok()) {
    fprintf(stderr, "vigild: %s\n", std::string(agent.status().message()).c_str());
    return 1;
  }
  vigil::VigilService service(agent->get());
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      vigil::StartServer(config.listen, &service);
  if (!server.ok()) {
    fprintf(stderr, "vigild: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  (*agent)->Start();
  // Metrics are optional: a port in use degrades, it does not stop the agent.
  std::unique_ptr<vigil::MetricsServer> metrics;
  if (!config.metrics.listen.empty()) {
    const vigil::Agent* a = agent->get();
    absl::StatusOr<std::unique_ptr<vigil::MetricsServer>> m = vigil::MetricsServer::Start(
        config.metrics, config.listen.tls_cert, config.listen.tls_key, config.listen.tls_client_ca,
        config.listen.insecure, [a] { return a->RenderMetrics(); }, a->Pprof());
    if (m.ok()) {
      metrics = *std::move(m);
    } else {
      fprintf(stderr, "vigild: metrics endpoint off: %s\n",
              std::string(m.status().message()).c_str());
    }
  }
  const vigil::v1::StatusResponse status = (*agent)->Status();
  for (const auto& cap : status.capabilities()) {
    if (cap.state() != vigil::v1::CAPABILITY_STATE_RUNNING) {
      fprintf(stderr, "vigild: capability %s is %s: %s\n", cap.name().c_str(),
              vigil::StateName(cap.state()).c_str(), cap.reason().c_str());
    }
  }
  std::string running;
  for (const auto& cap : status.capabilities()) {
    if (cap.state() != vigil::v1::CAPABILITY_STATE_OFF)
      absl::StrAppend(&running, running.empty() ? "" : ", ", cap.name());
  }
  const std::string ready = absl::StrFormat(
      "vigild %s: attached (%s); listening on %s, metrics %s, interval %s, window %s",
      VIGIL_VERSION, running, config.listen.address,
      metrics ? config.metrics.listen : std::string("off"), absl::FormatDuration(config.interval),
      absl::FormatDuration(config.window));
  fprintf(stderr, "%s\n", ready.c_str());
  sd_notifyf(0, "READY=1\nSTATUS=%s", ready.c_str());

  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGUSR2) break;
    (*agent)->StallForTesting();
  }
  sd_notify(0, "STOPPING=1");
  (*agent)->CloseAlertStreams();  // ends WatchAlerts streams so Shutdown need not wait
  (*agent)->EndSessions();        // detaches every trace and probe session
  fprintf(stderr, "vigild: %s, stopping\n", strsignal(sig));
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  metrics.reset();
  (*agent)->Stop();
  agent->reset();  // detaches and closes every BPF object
  // ParseFlags validated the address, so this parse cannot fail.
  const vigil::ParsedListen listen = *vigil::ParseListenAddress(config.listen.address);
  if (listen.is_unix) unlink(listen.path.c_str());
  return 0;
}
