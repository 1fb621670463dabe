#include "agent/metrics/syscall_series.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <vector>

#include "agent/syscalls/syscall_table.h"

namespace vigil {

SyscallSeries::Process& SyscallSeries::Touch(const std::string& comm) {
  auto it = processes_.find(comm);
  if (it != processes_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  while (!lru_.empty() && processes_.size() >= std::max<size_t>(max_processes_, 1)) {
    processes_.erase(lru_.back());
    lru_.pop_back();
    ++evicted_;
  }
  lru_.push_front(comm);
  Process& p = processes_[comm];
  p.lru = lru_.begin();
  return p;
}

void SyscallSeries::Add(const SyscallInterval& interval) {
  for (const SyscallRecord& r : interval.records) {
    Process& p = Touch(std::string(r.pcomm, strnlen(r.pcomm, VIGIL_COMM_LEN)));
    Totals& t = p.by_syscall[r.nr];
    t.calls += r.calls;
    t.errors += r.errors;
    t.ns += r.total_ns;
  }
}

void SyscallSeries::Render(Exposition* out) const {
  // Sorted so scrapes are stable and diffable.
  using Row = std::tuple<const std::string*, uint16_t, const Totals*>;
  std::vector<Row> rows;
  for (const auto& [comm, p] : processes_) {
    for (const auto& [nr, t] : p.by_syscall) rows.emplace_back(&comm, nr, &t);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(*std::get<0>(a), std::get<1>(a)) < std::tie(*std::get<0>(b), std::get<1>(b));
  });
  auto labels = [](const Row& row) {
    return Labels{{"comm", *std::get<0>(row)}, {"syscall", SyscallName(std::get<1>(row))}};
  };
  out->Family("vigil_syscalls_total", "counter",
              "Completed syscalls, per process name (the metrics-max-processes most recently "
              "seen) and syscall.");
  for (const Row& r : rows) out->Sample(labels(r), std::get<2>(r)->calls);
  out->Family("vigil_syscall_errors_total", "counter",
              "Syscalls that returned an error (-4095..-1), per process name and syscall.");
  for (const Row& r : rows) {
    out->Sample(labels(r), std::get<2>(r)->errors);
  }
  out->Family("vigil_syscall_seconds_total", "counter",
              "Time spent in syscalls (entry to exit), per process name and syscall; an "
              "estimate from 1 in N calls with vigild --syscalls-latency-sample N > 1.");
  for (const Row& r : rows) {
    out->Sample(labels(r), std::get<2>(r)->ns / 1e9);
  }
}

}  // namespace vigil
