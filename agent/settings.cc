#include "agent/settings.h"

#include "absl/container/flat_hash_map.h"
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

// A setting's parser takes its key (for the error) and its value: short
// names keep each table row below to a line or two.
using K = absl::string_view;
using V = absl::string_view;

// Keeps `n` when it is 1 or a power of two in [1, 1024].
absl::Status SampleEvery(K key, V value, uint32_t* out) {
  uint32_t n = 0;
  if (absl::Status s = Count(key, value, 1, 1024, &n); !s.ok()) return s;
  if ((n & (n - 1)) != 0) return Bad(key, value, "1 or a power of two up to 1024");
  *out = n;
  return absl::OkStatus();
}

absl::Status Source(K key, V value, CpuSource* out) {
  if (value == "auto") {
    *out = CpuSource::kAuto;
  } else if (value == "bpf") {
    *out = CpuSource::kBpf;
  } else if (value == "proc") {
    *out = CpuSource::kProc;
  } else {
    return Bad(key, value, "auto, bpf or proc");
  }
  return absl::OkStatus();
}

absl::Status Text(V value, std::string* out) {
  *out = std::string(value);  // empty is valid: off
  return absl::OkStatus();
}

// Every setting: its name, help and parser side by side, so none is
// documented without being accepted or accepted without being documented.
const std::vector<SettingInfo>& BaseSettings() {
  static const auto* all = new std::vector<SettingInfo>{
      {"listen", true, "unix:/path (default unix:/run/vigil/vigild.sock) or HOST:PORT (needs TLS)",
       [](K k, V v, AgentConfig* c) { return Path(k, v, &c->listen.address); }},
      {"tls-cert", true, "server certificate (PEM) for a TCP listener",
       [](K k, V v, AgentConfig* c) { return Path(k, v, &c->listen.tls_cert); }},
      {"tls-key", true, "server private key (PEM)",
       [](K k, V v, AgentConfig* c) { return Path(k, v, &c->listen.tls_key); }},
      {"tls-client-ca", true, "CA that client certificates must chain to (mutual TLS)",
       [](K k, V v, AgentConfig* c) { return Path(k, v, &c->listen.tls_client_ca); }},
      {"insecure-listen", false, "allow a plaintext TCP listener (not recommended)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->listen.insecure); }},
      {"interval", true, "collection interval (default 1s, min 10ms)",
       [](K k, V v, AgentConfig* c) { return Duration(k, v, &c->interval); }},
      {"window", true, "history kept in memory (default 10m)",
       [](K k, V v, AgentConfig* c) { return Duration(k, v, &c->window); }},
      {"store-max-records", true, "cap on records kept across the window (default 100000)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1000, 100000000, &c->store_max_records);
       }},
      {"query-share-bytes", true,
       "identical queries over the same intervals share one merge; answers kept until the next "
       "interval, this much memory at most, 0 or 64KiB-1GiB; 0: off (default 16MiB)",
       [](K k, V v, AgentConfig* c) {
         return BytesOrOff(k, v, uint64_t{64} << 10, uint64_t{1} << 30,
                           "0 (off) or a size from 64KiB to 1GiB, like 16MiB",
                           &c->query_share_bytes);
       }},
      {"syscalls-max-entries", true, "(thread, syscall) pairs per interval (default 16384)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 64, 4000000, &c->syscalls.max_entries); }},
      {"syscalls-latency", true, "on|off: record per-syscall latency (default on)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->syscalls.measure_latency); }},
      {"syscalls-latency-sample", true,
       "time 1 in N calls, chosen at random: 1 (every call, exact) or a power of two up to 1024; "
       "counts and errors stay exact (default 16)",
       [](K k, V v, AgentConfig* c) {
         return SampleEvery(k, v, &c->syscalls.latency_sample_every);
       }},
      {"syscalls-store-coarsen", true,
       "over store-max-records, merge the oldest intervals into ones of up to this span instead "
       "of evicting them: 0 (off) or 1s to 1h (default 1m)",
       [](K k, V v, AgentConfig* c) {
         return DurationIn(k, v, absl::Seconds(1), absl::Hours(1), "1m", /*zero_off=*/true,
                           &c->syscalls.store_coarsen_span);
       }},
      {"udpdrops-max-entries", true,
       "(netns, local addr, port, reason) UDP drop rows per interval (default 8192)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 64, 4000000, &c->udpdrops.max_entries); }},
      {"udpdrops-owner-cache", true,
       "socket inodes whose owning processes are cached (default 4096)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 16, 1000000, &c->udpdrops.owner_cache_entries);
       }},
      {"profile", true, "on|off: CPU profiler, stack sampling on every CPU (default on)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->profile.enabled); }},
      {"sample-hz", true, "profiler samples per second per CPU, 1-1000 (default 49)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 1000, &c->profile.sample_hz); }},
      {"profile-fault-period", true,
       "page faults per page-fault sample (vigil hot|profile --kind memory), 0-1048576; 0: off "
       "(default 64)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 0, kMaxFaultPeriod, &c->profile.fault_period);
       }},
      {"profile-map-min-bytes", true,
       "record each mmap, munmap and brk call of at least this size with its stack (vigil "
       "memory --pid), 0 or 4KiB-1TiB; 0: off (default 1MiB)",
       [](K k, V v, AgentConfig* c) {
         // 0 turns it off; below a page every mapping would be recorded.
         return BytesOrOff(k, v, 4096, kMaxMapMinBytes,
                           "0 (off) or a size from 4KiB to 1024GiB, like 1MiB",
                           &c->profile.map_min_bytes);
       }},
      {"profile-store-max-records", true,
       "cap on (thread, stack) CPU records kept across the window (default 100000)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1000, 100000000, &c->profile_store_max_records);
       }},
      {"profile-fault-store-max-records", true,
       "cap on (thread, stack) page-fault records, kept apart from CPU ones (default 50000)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1000, 100000000, &c->profile_fault_store_max_records);
       }},
      {"profile-unwinder", true,
       "cfi|fp: walk user stacks with tables compiled from .eh_frame, frame pointers only where "
       "a file has none (default cfi); fp: frame pointers everywhere",
       [](K k, V v, AgentConfig* c) {
         if (v != "cfi" && v != "fp") return Bad(k, v, "cfi or fp");
         c->profile.unwind.cfi = v == "cfi";
         return absl::OkStatus();
       }},
      {"profile-unwind-max-rows", true,
       "unwind table rows across all files, 8 bytes of locked kernel memory each (default "
       "2097152)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1024, 64u << 20, &c->profile.unwind.max_rows);
       }},
      {"profile-unwind-max-processes", true,
       "processes whose mappings the unwinder keeps, up to 8 KiB each (default 4096)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 16, 65536, &c->profile.unwind.max_processes);
       }},
      {"debuginfod-urls", true,
       "debuginfod servers for stripped binaries' debug files (default: $DEBUGINFOD_URLS, else "
       "off; \"off\": never)",
       [](K k, V v, AgentConfig* c) {
         if (v.empty()) return Bad(k, v, "URLs, or off");
         return Text(v, &c->profile.symbols.debuginfod.urls);
       }},
      {"debuginfod-cache-dir", true,
       "where fetched debug files are kept (default /var/cache/vigil/debuginfod)",
       [](K k, V v, AgentConfig* c) {
         if (v.empty() || v[0] != '/') return Bad(k, v, "an absolute directory");
         return Text(v, &c->profile.symbols.debuginfod.cache_dir);
       }},
      {"debuginfod-cache-max-bytes", true,
       "bytes of fetched debug files kept on disk, oldest deleted first (default 268435456)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1 << 20, uint64_t{1} << 40,
                      &c->profile.symbols.debuginfod.cache_max_bytes);
       }},
      {"debuginfod-max-download-bytes", true,
       "largest debug file fetched (default 134217728; at most the cache size)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1 << 16, uint64_t{1} << 40,
                      &c->profile.symbols.debuginfod.max_download_bytes);
       }},
      {"debuginfod-timeout", true, "one fetch, connect to last byte (default 30s)",
       [](K k, V v, AgentConfig* c) {
         return Duration(k, v, &c->profile.symbols.debuginfod.timeout);
       }},
      {"debuginfod-retry-after", true,
       "a build-id that failed is not asked for again before (default 10m)",
       [](K k, V v, AgentConfig* c) {
         return Duration(k, v, &c->profile.symbols.debuginfod.retry_after);
       }},
      {"memory", true,
       "on|off: per-process RSS and cgroup memory every interval, OOM kills (default on)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->memory.enabled); }},
      {"memory-max-processes", true,
       "processes recorded per interval, the largest by RSS (default 4096; the rest are counted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 1000000, &c->memory.max_processes); }},
      {"memory-max-cgroups", true,
       "memory cgroups whose usage is read per interval (default 256; the rest are counted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 100000, &c->memory.max_cgroups); }},
      {"mem-growth", true, "on|off: memory-growth alerts on the alert stream (default on)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->memory.growth.enabled); }},
      {"mem-growth-min-duration", true,
       "a process's RSS must rise in most intervals for this long to alert (default 60s)",
       [](K k, V v, AgentConfig* c) { return Duration(k, v, &c->memory.growth.min_duration); }},
      {"mem-growth-min-bytes", true,
       "and by at least this much over it (default 64MiB; 1MiB to 16384GiB)",
       [](K k, V v, AgentConfig* c) {
         return Bytes(k, v, uint64_t{1} << 20, uint64_t{16384} << 30, &c->memory.growth.min_bytes);
       }},
      {"memory-store-max-records", true,
       "cap on memory records (process and cgroup samples) kept across the window (default "
       "400000, ~48 bytes each)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1000, 100000000, &c->memory.store_max_records);
       }},
      {"cpu", true,
       "on|off: exact CPU per thread every interval from a BPF task iterator (default on)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->cpu.enabled); }},
      {"cpu-source", true,
       "auto|bpf|proc: where thread runtimes are read (default auto: the iterator, else /proc)",
       [](K k, V v, AgentConfig* c) { return Source(k, v, &c->cpu.source); }},
      {"cpu-max-tasks", true,
       "threads read per pass (default 65536; a longer pass is cut, counted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 64, 4000000, &c->cpu.max_tasks); }},
      {"cpu-max-threads", true,
       "threads that ran recorded per interval, the busiest (default 4096; the rest counted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 1000000, &c->cpu.max_threads); }},
      {"cpu-max-processes", true,
       "processes that ran recorded per interval, the busiest (default 4096; the rest counted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 1000000, &c->cpu.max_processes); }},
      {"cpu-store-max-records", true,
       "cap on cpu records kept across the window (default 400000, ~40 bytes each)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1000, 100000000, &c->cpu.store_max_records);
       }},
      {"metrics-listen", true,
       "Prometheus /metrics on HOST:PORT or unix:/PATH (default 127.0.0.1:9464; empty: off; "
       "other than loopback or a Unix socket, HTTPS with the tls-* client certificates)",
       [](K, V v, AgentConfig* c) { return Text(v, &c->metrics.listen); }},
      {"metrics-max-processes", true,
       "process names with their own series (default 100; the least recently seen is evicted)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 10000, &c->metrics_max_processes); }},
      {"allow-trace", false,
       "serve vigil trace: any client may stream a process's syscalls with their arguments "
       "(default off)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->ondemand.allow_trace); }},
      {"allow-probe", false,
       "serve vigil probe: any client may put uprobes and USDT probes on a process (default off)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->ondemand.allow_probe); }},
      {"session-max", true, "trace and probe sessions running at once, 1-64 (default 4)",
       [](K k, V v, AgentConfig* c) { return Count(k, v, 1, 64, &c->ondemand.max_sessions); }},
      {"session-max-duration", true, "longest trace or probe session (default 5m, at most 24h)",
       [](K k, V v, AgentConfig* c) {
         return DurationIn(k, v, absl::Seconds(1), absl::Hours(24), "5m", /*zero_off=*/false,
                           &c->ondemand.max_duration);
       }},
      {"trace-max-events-per-second", true,
       "syscall events one trace session passes on per second, 1-1000000; the rest are dropped "
       "in the kernel and counted (default 20000)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1, 1000000, &c->ondemand.trace_max_events_per_second);
       }},
      {"probe-max-functions", true, "functions one probe session may attach, 1-1024 (default 64)",
       [](K k, V v, AgentConfig* c) {
         return Count(k, v, 1, 1024, &c->ondemand.probe_max_functions);
       }},
      {"verbose", false, "libbpf's own log on stderr",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->verbose); }},
      {"test-stall-signal", false, "test only: SIGUSR2 hangs the collection loop (watchdog tests)",
       [](K k, V v, AgentConfig* c) { return Bool(k, v, &c->test_stall_signal); }},
  };
  return *all;
}

}  // namespace

const std::vector<SettingInfo>& AllSettings() {
  static const auto* all = [] {
    auto* v = new std::vector<SettingInfo>(BaseSettings());
    // The spin detector keeps its keys next to its code (agent/spin).
    for (const SpinSettingInfo& s : SpinSettings()) {
      v->push_back({s.name, true, s.help,
                    [](K k, V val, AgentConfig* c) { return ApplySpinSetting(k, val, &c->spin); }});
    }
    v->push_back({"on-alert", true,
                  "shell command run with each alert event's JSON on stdin (every kind)",
                  [](K, V val, AgentConfig* c) { return Text(val, &c->alerts.on_alert); }});
    v->push_back(
        {"on-alert-timeout", true, "kill the on-alert command after this long (default 5s)",
         [](K k, V val, AgentConfig* c) { return Duration(k, val, &c->alerts.on_alert_timeout); }});
    return v;
  }();
  return *all;
}

absl::Status ApplySetting(absl::string_view key, absl::string_view value, AgentConfig* c) {
  static const auto* by_name = [] {
    auto* m = new absl::flat_hash_map<absl::string_view, const SettingInfo*>;
    for (const SettingInfo& s : AllSettings()) m->emplace(s.name, &s);
    return m;
  }();
  auto it = by_name->find(key);
  if (it == by_name->end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown key ", QuoteValue(key)));
  }
  return it->second->apply(key, value, c);
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
