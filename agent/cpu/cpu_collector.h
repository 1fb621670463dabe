// Reads every thread's cumulative runtime once per interval: from the BPF
// task iterator in bpf/cpu.bpf.c, or from /proc where the iterator cannot
// load (or cpu-source is proc). Turns passes into per-interval CPU with
// CpuDeltas, and reads the host's CPU from /proc/stat.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/bpf_util.h"
#include "agent/cpu/cpu_aggregate.h"
#include "agent/cpu/cpu_config.h"

struct cpu_bpf;

namespace vigil {

class CpuCollector {
 public:
  // The iterator when config allows and it loads, else /proc (kAuto; the
  // reason is kept in fallback_reason()).
  static absl::StatusOr<std::unique_ptr<CpuCollector>> Create(const CpuConfig& config);

  // One interval: CPU used by every thread and process since the last call.
  CpuInterval Collect();

  bool uses_bpf() const { return skel_ != nullptr; }
  // Why /proc is read instead of the iterator; empty when it is not.
  const std::string& fallback_reason() const { return fallback_reason_; }
  std::vector<uint32_t> ProgramIds() const;

  ~CpuCollector();
  CpuCollector(const CpuCollector&) = delete;
  CpuCollector& operator=(const CpuCollector&) = delete;

 private:
  explicit CpuCollector(const CpuConfig& config);
  absl::Status PassBpf(TaskPass* pass, bool* cut);
  absl::Status PassProc(TaskPass* pass, bool* cut);
  void ReadHost(CpuInterval* iv);

  const CpuConfig config_;
  SkelPtr<cpu_bpf> skel_;
  LinkPtr iter_link_;  // declared after skel_: released before the program
  std::string fallback_reason_;
  CpuDeltas deltas_;
  std::vector<char> buf_;
  uint64_t tick_ns_ = 10000000;  // one clock tick (USER_HZ), in ns
  uint64_t last_busy_ticks_ = 0, last_total_ticks_ = 0;
};

}  // namespace vigil
