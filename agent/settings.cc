#include "agent/settings.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agent/server/listen.h"
#include "agent/setting_values.h"
#include "agent/spin/spin_detector.h"
#include "agent/spin/spin_settings.h"
#include "common/duration.h"
#include "common/safe_text.h"

namespace vigil {

const std::vector<SettingInfo>& BaseSettings();

namespace {

using setting::Bad;
using setting::Duration;
using setting::DurationIn;

template <typename T>
absl::Status Count(absl::string_view key, absl::string_view value, uint64_t min, uint64_t max,
                   T* out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    return Bad(key, value, absl::StrCat("an integer in [", min, ", ", max, "]"));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

// A size: an integer with an optional binary unit (64MiB, 512KiB, 2GiB;
// K, M, G alone mean the same), within [min, max] bytes.
absl::Status Bytes(absl::string_view key, absl::string_view value, uint64_t min, uint64_t max,
                   uint64_t* out) {
  absl::string_view v = absl::StripAsciiWhitespace(value);
  size_t digits = 0;
  while (digits < v.size() && absl::ascii_isdigit(v[digits])) ++digits;
  uint64_t n = 0, mult = 1;
  const absl::string_view unit = v.substr(digits);
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KiB") {
    mult = uint64_t{1} << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = uint64_t{1} << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = uint64_t{1} << 30;
  } else {
    digits = 0;  // unknown unit: rejected below
  }
  const std::string want =
      absl::StrCat("a size from ", min, " bytes to ", max >> 30, "GiB, like 64MiB or 1GiB");
  if (digits == 0 || digits > 12 || !absl::SimpleAtoi(v.substr(0, digits), &n)) {
    return Bad(key, value, want);
  }
  if (n > max / mult || n * mult < min) return Bad(key, value, want);
  *out = n * mult;
  return absl::OkStatus();
}

// A size 0 turns off: "0", or Bytes within [min, max]; a rejected value
// is told what is accepted (`want`, which names 0) and changes nothing.
absl::Status BytesOrOff(absl::string_view key, absl::string_view value, uint64_t min, uint64_t max,
                        absl::string_view want, uint64_t* out) {
  if (value == "0") {
    *out = 0;
    return absl::OkStatus();
  }
  if (!Bytes(key, value, min, max, out).ok()) return Bad(key, value, want);
  return absl::OkStatus();
}

absl::Status Bool(absl::string_view key, absl::string_view value, bool* out) {
  if (value == "true" || value == "on" || value == "yes" || value == "1") {
    *out = true;
  } else if (value == "false" || value == "off" || value == "no" || value == "0") {
    *out = false;
  } else {
    return Bad(key, value, "true or false");
  }
  return absl::OkStatus();
}

absl::Status Path(absl::string_view key, absl::string_view value, std::string* out) {
  if (value.empty()) return Bad(key, value, "a file path");
  *out = std::string(value);
  return absl::OkStatus();
}

}  // namespace

const std::vector<SettingInfo>& AllSettings() {
  static const auto* all = [] {
    auto* v = new std::vector<SettingInfo>(BaseSettings());
    // The spin detector keeps its keys next to its code (agent/spin).
    for (const SpinSettingInfo& s : SpinSettings()) v->push_back({s.name, true, s.help});
    v->push_back(
        {"on-alert", true, "shell command run with each alert event's JSON on stdin (every kind)"});
    v->push_back(
        {"on-alert-timeout", true, "kill the on-alert command after this long (default 5s)"});
    return v;
  }();
  return *all;
}

const std::vector<SettingInfo>& BaseSettings() {
  static const auto* all = new std::vector<SettingInfo>{
      {"listen", true, "unix:/path (default unix:/run/vigil/vigild.sock) or HOST:PORT (needs TLS)"},
      {"tls-cert", true, "server certificate (PEM) for a TCP listener"},
      {"tls-key", true, "server private key (PEM)"},
      {"tls-client-ca", true, "CA that client certificates must chain to (mutual TLS)"},
      {"insecure-listen", false, "allow a plaintext TCP listener (not recommended)"},
      {"interval", true, "collection interval (default 1s, min 10ms)"},
      {"window", true, "history kept in memory (default 10m)"},
      {"store-max-records", true, "cap on records kept across the window (default 100000)"},
      {"query-share-bytes", true,
       "identical queries over the same intervals share one merge; answers kept until the next "
       "interval, this much memory at most, 0 or 64KiB-1GiB; 0: off (default 16MiB)"},
      {"syscalls-max-entries", true, "(thread, syscall) pairs per interval (default 16384)"},
      {"syscalls-latency", true, "on|off: record per-syscall latency (default on)"},
      {"syscalls-latency-sample", true,
       "time 1 in N calls, chosen at random: 1 (every call, exact) or a power of two up to 1024; "
       "counts and errors stay exact (default 16)"},
      {"syscalls-store-coarsen", true,
       "over store-max-records, merge the oldest intervals into ones of up to this span instead "
       "of evicting them: 0 (off) or 1s to 1h (default 1m)"},
      {"udpdrops-max-entries", true,
       "(netns, local addr, port, reason) UDP drop rows per interval (default 8192)"},
      {"udpdrops-owner-cache", true,
       "socket inodes whose owning processes are cached (default 4096)"},
      {"profile", true, "on|off: CPU profiler, stack sampling on every CPU (default on)"},
      {"sample-hz", true, "profiler samples per second per CPU, 1-1000 (default 49)"},
      {"profile-fault-period", true,
       "page faults per page-fault sample (vigil hot|profile --kind memory), 0-1048576; 0: off "
       "(default 64)"},
      {"profile-map-min-bytes", true,
       "record each mmap, munmap and brk call of at least this size with its stack (vigil "
       "memory --pid), 0 or 4KiB-1TiB; 0: off (default 1MiB)"},
      {"profile-store-max-records", true,
       "cap on (thread, stack) CPU records kept across the window (default 100000)"},
      {"profile-fault-store-max-records", true,
       "cap on (thread, stack) page-fault records, kept apart from CPU ones (default 50000)"},
      {"profile-unwinder", true,
       "cfi|fp: walk user stacks with tables compiled from .eh_frame, frame pointers only where "
       "a file has none (default cfi); fp: frame pointers everywhere"},
      {"profile-unwind-max-rows", true,
       "unwind table rows across all files, 8 bytes of locked kernel memory each (default "
       "2097152)"},
      {"profile-unwind-max-processes", true,
       "processes whose mappings the unwinder keeps, up to 8 KiB each (default 4096)"},
      {"debuginfod-urls", true,
       "debuginfod servers for stripped binaries' debug files (default: $DEBUGINFOD_URLS, else "
       "off; \"off\": never)"},
      {"debuginfod-cache-dir", true,
       "where fetched debug files are kept (default /var/cache/vigil/debuginfod)"},
      {"debuginfod-cache-max-bytes", true,
       "bytes of fetched debug files kept on disk, oldest deleted first (default 268435456)"},
      {"debuginfod-max-download-bytes", true,
       "largest debug file fetched (default 134217728; at most the cache size)"},
      {"debuginfod-timeout", true, "one fetch, connect to last byte (default 30s)"},
      {"debuginfod-retry-after", true,
       "a build-id that failed is not asked for again before (default 10m)"},
      {"memory", true,
       "on|off: per-process RSS and cgroup memory every interval, OOM kills (default on)"},
      {"memory-max-processes", true,
       "processes recorded per interval, the largest by RSS (default 4096; the rest are counted)"},
      {"memory-max-cgroups", true,
       "memory cgroups whose usage is read per interval (default 256; the rest are counted)"},
      {"mem-growth", true, "on|off: memory-growth alerts on the alert stream (default on)"},
      {"mem-growth-min-duration", true,
       "a process's RSS must rise in most intervals for this long to alert (default 60s)"},
      {"mem-growth-min-bytes", true,
       "and by at least this much over it (default 64MiB; 1MiB to 16384GiB)"},
      {"memory-store-max-records", true,
       "cap on memory records (process and cgroup samples) kept across the window (default "
       "400000, ~48 bytes each)"},
      {"cpu", true,
       "on|off: exact CPU per thread every interval from a BPF task iterator (default on)"},
      {"cpu-source", true,
       "auto|bpf|proc: where thread runtimes are read (default auto: the iterator, else /proc)"},
      {"cpu-max-tasks", true,
       "threads read per pass (default 65536; a longer pass is cut, counted)"},
      {"cpu-max-threads", true,
       "threads that ran recorded per interval, the busiest (default 4096; the rest counted)"},
      {"cpu-max-processes", true,
       "processes that ran recorded per interval, the busiest (default 4096; the rest counted)"},
      {"cpu-store-max-records", true,
       "cap on cpu records kept across the window (default 400000, ~40 bytes each)"},
      {"metrics-listen", true,
       "Prometheus /metrics on HOST:PORT or unix:/PATH (default 127.0.0.1:9464; empty: off; "
       "other than loopback or a Unix socket, HTTPS with the tls-* client certificates)"},
      {"metrics-max-processes", true,
       "process names with their own series (default 100; the least recently seen is evicted)"},
      {"allow-trace", false,
       "serve vigil trace: any client may stream a process's syscalls with their arguments "
       "(default off)"},
      {"allow-probe", false,
       "serve vigil probe: any client may put uprobes and USDT probes on a process (default off)"},
      {"session-max", true, "trace and probe sessions running at once, 1-64 (default 4)"},
      {"session-max-duration", true, "longest trace or probe session (default 5m, at most 24h)"},
      {"trace-max-events-per-second", true,
       "syscall events one trace session passes on per second, 1-1000000; the rest are dropped "
       "in the kernel and counted (default 20000)"},
      {"probe-max-functions", true, "functions one probe session may attach, 1-1024 (default 64)"},
      {"verbose", false, "libbpf's own log on stderr"},
      {"test-stall-signal", false, "test only: SIGUSR2 hangs the collection loop (watchdog tests)"},
  };
  return *all;
}

absl::Status ApplySetting(absl::string_view key, absl::string_view value, AgentConfig* c) {
  if (IsSpinSetting(key)) return ApplySpinSetting(key, value, &c->spin);
  if (key == "on-alert") {
    c->alerts.on_alert = std::string(value);  // empty: none
    return absl::OkStatus();
  }
  if (key == "on-alert-timeout") return Duration(key, value, &c->alerts.on_alert_timeout);
  if (key == "listen") return Path(key, value, &c->listen.address);
  if (key == "tls-cert") return Path(key, value, &c->listen.tls_cert);
  if (key == "tls-key") return Path(key, value, &c->listen.tls_key);
  if (key == "tls-client-ca") return Path(key, value, &c->listen.tls_client_ca);
  if (key == "insecure-listen") return Bool(key, value, &c->listen.insecure);
  if (key == "interval") return Duration(key, value, &c->interval);
  if (key == "window") return Duration(key, value, &c->window);
  if (key == "store-max-records") return Count(key, value, 1000, 100000000, &c->store_max_records);
  if (key == "syscalls-max-entries") {
    return Count(key, value, 64, 4000000, &c->syscalls.max_entries);
  }
  if (key == "syscalls-latency") return Bool(key, value, &c->syscalls.measure_latency);
  if (key == "syscalls-latency-sample") {
    uint32_t n = 0;
    if (absl::Status s = Count(key, value, 1, 1024, &n); !s.ok()) return s;
    if ((n & (n - 1)) != 0) return Bad(key, value, "1 or a power of two up to 1024");
    c->syscalls.latency_sample_every = n;
    return absl::OkStatus();
  }
  if (key == "syscalls-store-coarsen") {
    return DurationIn(key, value, absl::Seconds(1), absl::Hours(1), "1m", /*zero_off=*/true,
                      &c->syscalls.store_coarsen_span);
  }
  if (key == "udpdrops-max-entries") {
    return Count(key, value, 64, 4000000, &c->udpdrops.max_entries);
  }
  if (key == "udpdrops-owner-cache") {
    return Count(key, value, 16, 1000000, &c->udpdrops.owner_cache_entries);
  }
  if (key == "profile") return Bool(key, value, &c->profile.enabled);
  if (key == "memory") return Bool(key, value, &c->memory.enabled);
  if (key == "cpu") return Bool(key, value, &c->cpu.enabled);
  if (key == "cpu-source") {
    if (value == "auto") {
      c->cpu.source = CpuSource::kAuto;
    } else if (value == "bpf") {
      c->cpu.source = CpuSource::kBpf;
    } else if (value == "proc") {
      c->cpu.source = CpuSource::kProc;
    } else {
      return Bad(key, value, "auto, bpf or proc");
    }
    return absl::OkStatus();
  }
  if (key == "cpu-max-tasks") return Count(key, value, 64, 4000000, &c->cpu.max_tasks);
  if (key == "cpu-max-threads") return Count(key, value, 1, 1000000, &c->cpu.max_threads);
  if (key == "cpu-max-processes") return Count(key, value, 1, 1000000, &c->cpu.max_processes);
  if (key == "cpu-store-max-records") {
    return Count(key, value, 1000, 100000000, &c->cpu.store_max_records);
  }
  if (key == "mem-growth") return Bool(key, value, &c->memory.growth.enabled);
  if (key == "mem-growth-min-duration") {
    return Duration(key, value, &c->memory.growth.min_duration);
  }
  if (key == "query-share-bytes") {
    return BytesOrOff(key, value, uint64_t{64} << 10, uint64_t{1} << 30,
                      "0 (off) or a size from 64KiB to 1GiB, like 16MiB", &c->query_share_bytes);
  }
  if (key == "mem-growth-min-bytes") {
    return Bytes(key, value, uint64_t{1} << 20, uint64_t{16384} << 30, &c->memory.growth.min_bytes);
  }
  if (key == "memory-max-processes") {
    return Count(key, value, 1, 1000000, &c->memory.max_processes);
  }
  if (key == "memory-max-cgroups") return Count(key, value, 1, 100000, &c->memory.max_cgroups);
  if (key == "memory-store-max-records") {
    return Count(key, value, 1000, 100000000, &c->memory.store_max_records);
  }
  if (key == "sample-hz") return Count(key, value, 1, 1000, &c->profile.sample_hz);
  if (key == "profile-map-min-bytes") {
    // 0 turns it off; below a page every mapping would be recorded.
    return BytesOrOff(key, value, 4096, kMaxMapMinBytes,
                      "0 (off) or a size from 4KiB to 1024GiB, like 1MiB",
                      &c->profile.map_min_bytes);
  }
  if (key == "profile-fault-period") {
    return Count(key, value, 0, kMaxFaultPeriod, &c->profile.fault_period);
  }
  if (key == "profile-unwinder") {
    if (value != "cfi" && value != "fp") {
      return Bad(key, value, "cfi or fp");
    }
    c->profile.unwind.cfi = value == "cfi";
    return absl::OkStatus();
  }
  if (key == "profile-unwind-max-rows") {
    return Count(key, value, 1024, 64u << 20, &c->profile.unwind.max_rows);
  }
  if (key == "profile-unwind-max-processes") {
    return Count(key, value, 16, 65536, &c->profile.unwind.max_processes);
  }
  if (key == "profile-store-max-records") {
    return Count(key, value, 1000, 100000000, &c->profile_store_max_records);
  }
  if (key == "profile-fault-store-max-records") {
    return Count(key, value, 1000, 100000000, &c->profile_fault_store_max_records);
  }
  if (key == "debuginfod-urls") {
    if (value.empty()) return Bad(key, value, "URLs, or off");
    c->profile.symbols.debuginfod.urls = std::string(value);
    return absl::OkStatus();
  }
  if (key == "debuginfod-cache-dir") {
    if (value.empty() || value[0] != '/') return Bad(key, value, "an absolute directory");
    c->profile.symbols.debuginfod.cache_dir = std::string(value);
    return absl::OkStatus();
  }
  if (key == "debuginfod-cache-max-bytes") {
    return Count(key, value, 1 << 20, uint64_t{1} << 40,
                 &c->profile.symbols.debuginfod.cache_max_bytes);
  }
  if (key == "debuginfod-max-download-bytes") {
    return Count(key, value, 1 << 16, uint64_t{1} << 40,
                 &c->profile.symbols.debuginfod.max_download_bytes);
  }
  if (key == "debuginfod-timeout")
    return Duration(key, value, &c->profile.symbols.debuginfod.timeout);
  if (key == "debuginfod-retry-after") {
    return Duration(key, value, &c->profile.symbols.debuginfod.retry_after);
  }
  if (key == "metrics-listen") {
    c->metrics.listen = std::string(value);  // empty is valid: off
    return absl::OkStatus();
  }
  if (key == "metrics-max-processes") {
    return Count(key, value, 1, 10000, &c->metrics_max_processes);
  }
  if (key == "allow-trace") return Bool(key, value, &c->ondemand.allow_trace);
  if (key == "allow-probe") return Bool(key, value, &c->ondemand.allow_probe);
  if (key == "session-max") return Count(key, value, 1, 64, &c->ondemand.max_sessions);
  if (key == "session-max-duration") {
    return DurationIn(key, value, absl::Seconds(1), absl::Hours(24), "5m", /*zero_off=*/false,
                      &c->ondemand.max_duration);
  }
  if (key == "trace-max-events-per-second") {
    return Count(key, value, 1, 1000000, &c->ondemand.trace_max_events_per_second);
  }
  if (key == "probe-max-functions") {
    return Count(key, value, 1, 1024, &c->ondemand.probe_max_functions);
  }
  if (key == "verbose") return Bool(key, value, &c->verbose);
  if (key == "test-stall-signal") return Bool(key, value, &c->test_stall_signal);
  return absl::InvalidArgumentError(absl::StrCat("unknown key ", QuoteValue(key)));
}

absl::Status ApplyConfigText(absl::string_view text, absl::string_view path, AgentConfig* c) {
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected \"key = value\", got ", QuoteValue(line)));
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (absl::Status s = ApplySetting(key, value, c); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const AgentConfig& c) {
  if (c.interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("interval must be at least 10ms");
  }
  if (c.window < c.interval)
    return absl::InvalidArgumentError("window must be at least one interval");
  if (c.window / c.interval > 1000000) {
    return absl::InvalidArgumentError("window / interval must be at most 1000000 intervals");
  }
  absl::StatusOr<ParsedListen> p = ParseListenAddress(c.listen.address);
  if (!p.ok()) return p.status();
  if (absl::Status s = ValidateListen(*p, c.listen); !s.ok()) return s;
  if (absl::Status s = ValidateSpinConfig(c.spin); !s.ok()) return s;
  const DebuginfodConfig& d = c.profile.symbols.debuginfod;
  if (d.max_download_bytes > d.cache_max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("debuginfod-max-download-bytes (", d.max_download_bytes,
                     ") must not exceed debuginfod-cache-max-bytes (", d.cache_max_bytes, ")"));
  }
  if (!c.metrics.listen.empty()) {
    absl::StatusOr<ParsedListen> m = ParseListenAddress(c.metrics.listen);
    if (!m.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-listen ", QuoteValue(c.metrics.listen),
                       ": expected HOST:PORT or unix:/PATH (empty turns it off)"));
    }
    const bool tls =
        !c.listen.tls_cert.empty() && !c.listen.tls_key.empty() && !c.listen.tls_client_ca.empty();
    if (!m->is_unix && !m->loopback && !tls && !c.listen.insecure) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics-listen ", QuoteValue(c.metrics.listen),
                       ": a non-loopback address needs the tls-* settings (or insecure-listen)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vigil
