#include "agent/metrics/syscall_series.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "agent/syscalls/syscall_table.h"

namespace vigil {

void SyscallSeries::Add(const SyscallInterval& interval) {
  for (const SyscallRecord& r : interval.records) {
    std::string comm(r.pcomm, strnlen(r.pcomm, VIGIL_COMM_LEN));
    if (!admitted_.contains(comm)) {
      if (admitted_.size() < max_processes_) {
        admitted_.insert(comm);
      } else {
        if (overflowed_.size() < max_processes_) overflowed_.insert(comm);
        comm = "other";
      }
    }
    Totals& t = totals_[{comm, r.nr}];
    t.calls += r.calls;
    t.errors += r.errors;
    t.ns += r.total_ns;
  }
}

void SyscallSeries::Render(Exposition* out) const {
  // Sorted so scrapes are stable and diffable.
  std::vector<const std::pair<const std::pair<std::string, uint16_t>, Totals>*> rows;
  rows.reserve(totals_.size());
  for (const auto& kv : totals_) rows.push_back(&kv);
  std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  auto labels = [](const auto* row) {
    return Labels{{"comm", row->first.first}, {"syscall", SyscallName(row->first.second)}};
  };
  out->Family("vigil_syscalls_total", "counter",
              "Completed syscalls, per process name (first N names, then comm=\"other\") and syscall.");
  for (const auto* r : rows) out->Sample("vigil_syscalls_total", labels(r), r->second.calls);
  out->Family("vigil_syscall_errors_total", "counter",
              "Syscalls that returned an error (-4095..-1), per process name and syscall.");
  for (const auto* r : rows) out->Sample("vigil_syscall_errors_total", labels(r), r->second.errors);
  out->Family("vigil_syscall_seconds_total", "counter",
              "Time spent in syscalls (entry to exit), per process name and syscall.");
  for (const auto* r : rows) out->Sample("vigil_syscall_seconds_total", labels(r), r->second.ns / 1e9);
}

}  // namespace vigil
