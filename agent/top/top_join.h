// Pure logic of GetTop: one row per process (and thread) joined from what
// each capability answered over the same range, filtered, ordered and cut.
// No store and no BPF here: unit tests build the inputs by hand.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cpu/cpu_aggregate.h"
#include "re2/re2.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

inline constexpr uint32_t kTopDefaultRows = 200;
inline constexpr uint32_t kTopMaxRows = 10000;

struct TopQuery {
  uint32_t pid = 0;
  std::unique_ptr<RE2> comm;  // nullptr: any
  v1::TopSort sort = v1::TOP_SORT_CPU;
  uint32_t top = kTopDefaultRows;
  bool threads = false;
};
// INVALID_ARGUMENT with one line for a bad request.
absl::StatusOr<TopQuery> ValidateTopRequest(const v1::TopRequest& req);

// What each capability answered; nullptr where it is off or failed (the
// reason goes in `unavailable`).
struct TopInputs {
  const CpuUsage* cpu = nullptr;                 // exact CPU
  const v1::ProfileResponse* profile = nullptr;  // CPU estimate, without cpu
  const v1::MemoryResponse* memory = nullptr;
  const v1::SyscallsResponse* syscalls = nullptr;  // grouped by thread
  const v1::DropsResponse* drops = nullptr;
  const v1::ListAlertsResponse* alerts = nullptr;
  std::vector<std::pair<std::string, std::string>> unavailable;  // (columns, why)
  std::string hostname;
  uint32_t agent_pid = 0;
  uint64_t agent_rss_bytes = 0;  // when the memory table has no row for it
  std::vector<v1::TopLoss> losses;
};

v1::TopResponse JoinTop(const TopInputs& in, const TopQuery& q);

// Orders rows by `sort`, largest first for the measures, smallest first
// for pid and comm; ties by pid, then tid.
void SortTopRows(v1::TopSort sort, google::protobuf::RepeatedPtrField<v1::TopRow>* rows);

}  // namespace vigil
