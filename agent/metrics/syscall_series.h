// Cumulative syscall counters for Prometheus, per process name (comm) and
// syscall. Cardinality is bounded: the max_processes most recently seen
// names keep their series; when a new name arrives and the set is full, the
// least recently seen name is evicted, its series dropped (a name that comes
// back starts again from zero, which Prometheus reads as a new series /
// counter reset) and counted in evicted(). Pid is not a label: it churns
// without bound.
#pragma once

#include <cstdint>
#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "agent/metrics/exposition.h"
#include "agent/syscalls/syscalls_aggregate.h"

namespace vigil {

class SyscallSeries {
 public:
  explicit SyscallSeries(size_t max_processes) : max_processes_(max_processes) {}

  void Add(const SyscallInterval& interval);
  void Render(Exposition* out) const;

  // Process names that have their own series now (at most max_processes).
  size_t admitted() const { return processes_.size(); }
  // Process names evicted (least recently seen first) to make room for a new
  // one, since start; a name evicted twice counts twice.
  uint64_t evicted() const { return evicted_; }

 private:
  struct Totals {
    uint64_t calls = 0, errors = 0, ns = 0;
  };
  struct Process {
    std::list<std::string>::iterator lru;  // its place in lru_
    absl::flat_hash_map<uint16_t, Totals> by_syscall;
  };
  // The series of comm, refreshed as most recently seen; evicts the least
  // recently seen process first if comm is new and the set is full.
  Process& Touch(const std::string& comm);

  const size_t max_processes_;
  std::list<std::string> lru_;  // most recently seen first
  absl::flat_hash_map<std::string, Process> processes_;
  uint64_t evicted_ = 0;
};

}  // namespace vigil
