// Cumulative syscall counters for Prometheus, per process name (comm) and
// syscall. Counters must only grow and their label sets must stay stable,
// so a process name, once admitted, keeps its series; the first
// max_processes names are admitted, later ones are summed into
// comm="other". Pid is not a label: it churns without bound.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "agent/metrics/exposition.h"
#include "agent/syscalls/syscalls_aggregate.h"

namespace vigil {

class SyscallSeries {
 public:
  explicit SyscallSeries(size_t max_processes) : max_processes_(max_processes) {}

  void Add(const SyscallInterval& interval);
  void Render(Exposition* out) const;

  size_t admitted() const { return admitted_.size(); }
  // Distinct names summed into "other" because the cap was reached.
  size_t overflowed() const { return overflowed_.size(); }

 private:
  struct Totals {
    uint64_t calls = 0, errors = 0, ns = 0;
  };
  const size_t max_processes_;
  absl::flat_hash_set<std::string> admitted_;
  absl::flat_hash_set<std::string> overflowed_;  // bounded by max_processes_ too
  absl::flat_hash_map<std::pair<std::string, uint16_t>, Totals> totals_;
};

}  // namespace vigil
