// vigild: the Vigil agent. Flags are parsed here and nowhere else; everything
// below takes an AgentConfig.
#include <getopt.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/bpf_util.h"
#include "agent/config.h"
#include "agent/preflight.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_settings.h"
#include "agent/server/listen.h"
#include "agent/server/vigil_service.h"

namespace {

constexpr char kUsage[] = R"(usage: vigild [options]

Vigil agent: always-on eBPF tracing. Loads its BPF programs, keeps a bounded
window of per-interval data in memory, and serves gRPC (vigil.v1).

options:
  --listen ADDR               unix:/path (default unix:/run/vigil/vigild.sock)
                              or HOST:PORT (needs the --tls-* flags)
  --tls-cert FILE             server certificate (PEM) for a TCP listener
  --tls-key FILE              server private key (PEM)
  --tls-client-ca FILE        CA that client certificates must chain to (mTLS)
  --insecure-listen           allow a plaintext TCP listener (not recommended)
  --interval DURATION         collection interval (default 1s, min 10ms)
  --window DURATION           history kept in memory (default 10m)
  --store-max-records N       cap on records kept across the window (default 100000)
  --syscalls-max-entries N    (thread, syscall) pairs per interval (default 16384)
  --syscalls-latency on|off   record per-syscall latency (default on); off
                              records calls and errors only, at lower cost
  --profile on|off            CPU profiler: stack sampling on every CPU (default on)
  --sample-hz N               profiler samples per second per CPU, 1-1000 (default 49)
  --spin on|off               spin alerts: a thread on CPU without syscalls
                              (default on; needs syscalls and profile)
  --spin-cpu-threshold X      on-CPU share of one CPU that counts as spinning,
                              (0,1] (default 0.9)
  --spin-min-duration DUR     how long before the alert fires (default 30s)
  --spin-ignore-comm REGEX    thread or process names that never alert (RE2)
  --spin-ignore-cgroup REGEX  cgroup paths whose threads never alert (RE2)
  --on-alert CMD              run CMD (sh -c) with each alert event's JSON on
                              stdin; killed after --on-alert-timeout (5s)
  --on-alert-timeout DUR
  --verbose                   libbpf's own log on stderr
  --version                   print the version and exit
  -h, --help                  this help

exit codes: 0 stopped cleanly, 1 could not start, 2 bad usage
)";

[[noreturn]] void UsageError(const std::string& msg) {
  fprintf(stderr, "vigild: %s (see vigild --help)\n", msg.c_str());
  exit(2);
}

absl::Duration ParseDurationFlag(const char* flag, const char* value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
    UsageError(absl::StrCat("--", flag, " \"", value, "\": expected a positive duration like 1s, 500ms, 10m"));
  }
  return d;
}

uint64_t ParseCountFlag(const char* flag, const char* value, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    UsageError(absl::StrCat("--", flag, " \"", value, "\": expected an integer in [", min, ", ", max, "]"));
  }
  return v;
}

vigil::AgentConfig ParseFlags(int argc, char** argv) {
  enum {
    kListen = 1000, kTlsCert, kTlsKey, kTlsCa, kInsecure, kInterval, kWindow,
    kStoreMax, kSysMax, kSysLatency, kVerbose, kVersion, kProfile, kSampleHz,
    kSpinSetting,
  };
  static const option kOpts[] = {
      {"listen", required_argument, nullptr, kListen},
      {"tls-cert", required_argument, nullptr, kTlsCert},
      {"tls-key", required_argument, nullptr, kTlsKey},
      {"tls-client-ca", required_argument, nullptr, kTlsCa},
      {"insecure-listen", no_argument, nullptr, kInsecure},
      {"interval", required_argument, nullptr, kInterval},
      {"window", required_argument, nullptr, kWindow},
      {"store-max-records", required_argument, nullptr, kStoreMax},
      {"syscalls-max-entries", required_argument, nullptr, kSysMax},
      {"syscalls-latency", required_argument, nullptr, kSysLatency},
      {"verbose", no_argument, nullptr, kVerbose},
      {"profile", required_argument, nullptr, kProfile},
      {"sample-hz", required_argument, nullptr, kSampleHz},
      {"version", no_argument, nullptr, kVersion},
      {"help", no_argument, nullptr, 'h'},
      // Spin settings: applied by name through ApplySpinSetting, which the
      // config file uses too.
      {"spin", required_argument, nullptr, kSpinSetting},
      {"spin-cpu-threshold", required_argument, nullptr, kSpinSetting},
      {"spin-min-duration", required_argument, nullptr, kSpinSetting},
      {"spin-ignore-comm", required_argument, nullptr, kSpinSetting},
      {"spin-ignore-cgroup", required_argument, nullptr, kSpinSetting},
      {"on-alert", required_argument, nullptr, kSpinSetting},
      {"on-alert-timeout", required_argument, nullptr, kSpinSetting},
      {nullptr, 0, nullptr, 0},
  };
  vigil::AgentConfig c;
  opterr = 0;
  int opt;
  int long_index = -1;
  while ((opt = getopt_long(argc, argv, ":h", kOpts, &long_index)) != -1) {
    switch (opt) {
      case kSpinSetting:
        if (absl::Status s = vigil::ApplySpinSetting(kOpts[long_index].name, optarg, &c.spin); !s.ok()) {
          UsageError(absl::StrCat("--", s.message()));
        }
        break;
      case kListen: c.listen.address = optarg; break;
      case kTlsCert: c.listen.tls_cert = optarg; break;
      case kTlsKey: c.listen.tls_key = optarg; break;
      case kTlsCa: c.listen.tls_client_ca = optarg; break;
      case kInsecure: c.listen.insecure = true; break;
      case kInterval: c.interval = ParseDurationFlag("interval", optarg); break;
      case kWindow: c.window = ParseDurationFlag("window", optarg); break;
      case kStoreMax: c.store_max_records = ParseCountFlag("store-max-records", optarg, 1000, 100000000); break;
      case kSysMax:
        c.syscalls.max_entries =
            static_cast<uint32_t>(ParseCountFlag("syscalls-max-entries", optarg, 64, 4000000));
        break;
      case kSysLatency: {
        const std::string v = optarg;
        if (v != "on" && v != "off") UsageError(absl::StrCat("--syscalls-latency \"", v, "\": expected on or off"));
        c.syscalls.measure_latency = v == "on";
        break;
      }
      case kVerbose: c.verbose = true; break;
      case kProfile: {
        const std::string v = optarg;
        if (v != "on" && v != "off") UsageError(absl::StrCat("--profile \"", v, "\": expected on or off"));
        c.profile.enabled = v == "on";
        break;
      }
      case kSampleHz:
        c.profile.sample_hz = static_cast<uint32_t>(ParseCountFlag("sample-hz", optarg, 1, 1000));
        break;
      case kVersion: printf("vigild %s\n", VIGIL_VERSION); exit(0);
      case 'h': fputs(kUsage, stdout); exit(0);
      case ':': UsageError(absl::StrCat("option ", argv[optind - 1], " needs a value"));
      default: UsageError(absl::StrCat("unknown option ", argv[optind - 1]));
    }
  }
  if (optind < argc) UsageError(absl::StrCat("unexpected argument \"", argv[optind], "\""));
  if (c.interval < absl::Milliseconds(10)) UsageError("--interval must be at least 10ms");
  if (c.window < c.interval) UsageError("--window must be at least one --interval");
  if (c.window / c.interval > 1000000) UsageError("--window / --interval must be at most 1000000 intervals");
  if (absl::Status s = vigil::ValidateSpinConfig(c.spin); !s.ok()) UsageError(std::string(s.message()));
  absl::StatusOr<vigil::ParsedListen> p = vigil::ParseListenAddress(c.listen.address);
  if (!p.ok()) UsageError(std::string(p.status().message()));
  if (absl::Status s = vigil::ValidateListen(*p, c.listen); !s.ok()) UsageError(std::string(s.message()));
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  vigil::AgentConfig config = ParseFlags(argc, argv);

  // Block the stop signals in every thread (gRPC's included); main waits.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
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
  absl::StatusOr<std::unique_ptr<grpc::Server>> server = vigil::StartServer(config.listen, &service);
  if (!server.ok()) {
    fprintf(stderr, "vigild: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  (*agent)->Start();
  const vigil::v1::StatusResponse status = (*agent)->Status();
  for (const auto& cap : status.capabilities()) {
    if (cap.state() != "running") {
      fprintf(stderr, "vigild: capability %s is %s: %s\n", cap.name().c_str(),
              cap.state().c_str(), cap.reason().c_str());
    }
  }
  fprintf(stderr, "vigild %s: listening on %s, interval %s, window %s\n", VIGIL_VERSION,
          config.listen.address.c_str(), absl::FormatDuration(config.interval).c_str(),
          absl::FormatDuration(config.window).c_str());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  fprintf(stderr, "vigild: %s, stopping\n", strsignal(sig));
  (*agent)->CloseAlertStreams();
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*agent)->Stop();
  agent->reset();  // detaches and closes every BPF object
  // ParseFlags validated the address, so this parse cannot fail.
  const vigil::ParsedListen listen = *vigil::ParseListenAddress(config.listen.address);
  if (listen.is_unix) unlink(listen.path.c_str());
  return 0;
}
