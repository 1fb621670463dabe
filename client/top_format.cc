#include "client/top_format.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/safe_text.h"

namespace vigil::cli {
namespace {

// Fixed columns, then COMM takes what is left of the width.
constexpr char kRowFormat[] = "%7s %6s %6s %7s %6s %6s %5s %6s %-7s %s";

bool Has(const v1::TopRow& r, v1::AlertKind k) {
  return std::find(r.alerts().begin(), r.alerts().end(), k) != r.alerts().end();
}

std::string Alert(const v1::TopRow& r) {
  const bool spin = Has(r, v1::ALERT_KIND_SPIN), grow = Has(r, v1::ALERT_KIND_MEMORY_GROWTH);
  if (spin && grow) return "SPIN+MG";
  if (spin) return "SPIN";
  if (grow) return "MEMGROW";
  return "";
}

std::string Pct(double v) {
  if (v >= 10000) return absl::StrFormat("%.0fk", v / 1000);
  if (v >= 1000) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.1f", v);
}

// Cuts s to n display columns (names are escaped ASCII or UTF-8: cut at a
// character boundary, counting each character as one column).
std::string Fit(const std::string& s, size_t n) {
  size_t cols = 0, i = 0;
  while (i < s.size() && cols < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    i += c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    ++cols;
  }
  return s.substr(0, std::min(i, s.size()));
}

// Signed, and 0 below 1 KiB/s: a few pages of noise are not growth.
std::string Growth(double rate) {
  if (std::fabs(rate) < 1024) return "0";
  return (rate > 0 ? "+" : "") + CompactBytes(rate);
}

}  // namespace

const std::vector<TopColumn>& TopColumns() {
  static const std::vector<TopColumn>* const cols = new std::vector<TopColumn>{
      {"PID", 'N', v1::TOP_SORT_PID},           {"CPU%", 'P', v1::TOP_SORT_CPU},
      {"RSS", 'M', v1::TOP_SORT_RSS},           {"GROW/s", 'G', v1::TOP_SORT_GROWTH},
      {"SYSC/s", 'S', v1::TOP_SORT_SYSCALLS},   {"ERR/s", 'E', v1::TOP_SORT_ERRORS},
      {"SYS%", 'Y', v1::TOP_SORT_SYSCALL_TIME}, {"DROP/s", 'D', v1::TOP_SORT_DROPS},
      {"COMM", 'C', v1::TOP_SORT_COMM},
  };
  return *cols;
}

const char* TopSortName(v1::TopSort sort) {
  if (sort == v1::TOP_SORT_UNSPECIFIED) sort = v1::TOP_SORT_CPU;
  for (const TopColumn& c : TopColumns()) {
    if (c.sort == sort) return c.header;
  }
  return "?";
}

std::string CompactBytes(double b) {
  const char* units = "BKMGTP";
  const bool neg = b < 0;
  double v = std::fabs(b);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%s%.0f", neg ? "-" : "", v);
  if (v < 10) return absl::StrFormat("%s%.1f%c", neg ? "-" : "", v, units[u]);
  return absl::StrFormat("%s%.0f%c", neg ? "-" : "", v, units[u]);
}

std::string CompactRate(double v) {
  if (v <= 0) return "0";
  if (v < 10) return absl::StrFormat("%.1f", v);
  if (v < 10000) return absl::StrFormat("%.0f", v);
  if (v < 10e6) return absl::StrFormat("%.0fk", v / 1000);
  return absl::StrFormat("%.0fM", v / 1e6);
}

TopScreen RenderTop(const v1::TopResponse& r, const TopScreenOptions& o) {
  TopScreen s;
  const size_t width = static_cast<size_t>(std::max(o.width, 40));
  auto line = [&](std::string l) { s.header.push_back(Fit(l, width)); };
  const v1::TopHeader& h = r.header();
  line(absl::StrCat("vigil top - ", SafeText(h.hostname()), o.agent.empty() ? "" : " (",
                    o.agent.empty() ? "" : SafeText(o.agent), o.agent.empty() ? "" : ")",
                    o.clock.empty() ? "" : "  ", o.clock));
  bool cpu_off = false, mem_off = false, sys_off = false, drops_off = false;
  std::vector<std::string> missing;
  for (const v1::TopColumnsUnavailable& u : r.unavailable()) {
    cpu_off = cpu_off || u.columns() == "cpu";
    mem_off = mem_off || u.columns() == "memory";
    sys_off = sys_off || u.columns() == "syscalls";
    drops_off = drops_off || u.columns() == "udpdrops";
    missing.push_back(absl::StrCat("no ", u.columns(), ": ", SafeText(u.reason())));
  }
  const char* source = r.cpu_source() == v1::CPU_SOURCE_EXACT  ? "exact"
                       : r.cpu_source() == v1::CPU_SOURCE_PROC ? "exact, /proc"
                       : r.cpu_source() == v1::CPU_SOURCE_PROFILE_ESTIMATE
                           ? "ESTIMATE from profiler samples"
                           : "none";
  line(absl::StrFormat("host cpu %5.1f%% of %u  mem %s used of %s (%s avail)  cpu%% %s",
                       h.host_cpu_pct(), h.host_cpus(),
                       CompactBytes(static_cast<double>(
                           h.host_memory_total_bytes() -
                           std::min(h.host_memory_total_bytes(), h.host_memory_available_bytes()))),
                       CompactBytes(static_cast<double>(h.host_memory_total_bytes())),
                       CompactBytes(static_cast<double>(h.host_memory_available_bytes())), source));
  std::string losses;
  for (const v1::TopLoss& l : h.losses()) {
    if (losses.size() > 60) break;
    absl::StrAppend(&losses, losses.empty() ? " (" : ", ", l.capability(), " ", l.cause(), " ",
                    l.count());
  }
  if (!losses.empty()) losses += ")";
  line(absl::StrFormat("vigild pid %u cpu %.1f%% rss %s  query %.1f ms  pass %.2f ms  lost %u%s",
                       h.agent_pid(), h.agent_cpu_pct(),
                       CompactBytes(static_cast<double>(h.agent_rss_bytes())),
                       static_cast<double>(r.query_ns()) / 1e6,
                       static_cast<double>(r.cpu_pass_ns()) / 1e6, h.lost_total(), losses));
  for (const std::string& m : missing) line(m);
  if (!o.state.empty()) line(o.state);

  const size_t fixed = 7 + 1 + 6 + 1 + 6 + 1 + 7 + 1 + 6 + 1 + 6 + 1 + 5 + 1 + 6 + 1 + 7 + 1;
  const size_t comm_width = width > fixed ? width - fixed : 4;
  s.columns = Fit(absl::StrFormat(kRowFormat, "PID", "CPU%", "RSS", "GROW/s", "SYSC/s", "ERR/s",
                                  "SYS%", "DROP/s", "ALERT", "COMM"),
                  width);
  auto row = [&](const v1::TopRow& t, bool thread) {
    const bool est = t.cpu_source() == v1::CPU_SOURCE_PROFILE_ESTIMATE;
    std::string comm = SafeText(t.comm());
    if (t.kernel()) comm = "[" + comm + "]";
    if (thread) comm = "  " + comm;
    s.rows.push_back(Fit(
        absl::StrFormat(kRowFormat, absl::StrCat(thread ? t.tid() : t.pid()),
                        cpu_off && !est ? "-" : absl::StrCat(est ? "~" : "", Pct(t.cpu_pct())),
                        mem_off || thread ? "-" : CompactBytes(static_cast<double>(t.rss_bytes())),
                        mem_off || thread ? "-" : Growth(t.rss_growth_bytes_per_s()),
                        sys_off ? "-" : CompactRate(t.syscalls_per_s()),
                        sys_off ? "-" : CompactRate(t.errors_per_s()),
                        sys_off ? "-" : Pct(t.syscall_time_pct()),
                        drops_off || thread ? "-" : CompactRate(t.udp_drops_per_s()), Alert(t),
                        Fit(comm, comm_width)),
        width));
    s.ids.push_back({t.pid(), thread ? t.tid() : 0});
  };
  for (const v1::TopRow& p : r.processes()) {
    row(p, false);
    if (o.threads) {
      for (const v1::TopRow& t : p.threads()) row(t, true);
    }
  }
  return s;
}

std::string TopScreenText(const TopScreen& s) {
  std::string out = absl::StrJoin(s.header, "\n");
  absl::StrAppend(&out, "\n\n", s.columns, "\n");
  for (const std::string& r : s.rows) absl::StrAppend(&out, r, "\n");
  return out;
}

}  // namespace vigil::cli
