// GetTop: asks each capability's own const query over the same range (the
// StoreView only, never a collector), then joins the answers (top_join.h).
// A capability that is off or fails leaves its columns empty with the
// reason; only a bad request fails the RPC.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/store/window_store.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

class CpuCapability;
class ProfileCapability;
class MemoryCapability;
class SyscallsCapability;
class UdpDropsCapability;
class AlertStream;

struct TopSources {
  // nullptr where the capability is off.
  const CpuCapability* cpu = nullptr;
  const ProfileCapability* profile = nullptr;
  const MemoryCapability* memory = nullptr;
  const SyscallsCapability* syscalls = nullptr;
  const UdpDropsCapability* udpdrops = nullptr;
  // The agent's alert stream (spin and memory-growth alerts); always set
  // by the agent, nullptr leaves the markers empty.
  const AlertStream* alerts = nullptr;
  bool spin_on = true;  // false: no SPIN markers can appear (said so)
  // Why a capability is off, by name ("" if unknown).
  std::function<std::string(const std::string& name)> off_reason;
  std::string hostname;
  absl::Duration window = absl::Minutes(10);   // the store's
  absl::Duration interval = absl::Seconds(1);  // the collection loop's
  uint32_t agent_pid = 0;
  uint64_t agent_rss_bytes = 0;
  std::vector<v1::TopLoss> losses;
};

absl::StatusOr<v1::TopResponse> QueryTop(const TopSources& src, const StoreView& store,
                                         const QueryContext& ctx, const v1::TopRequest& req);

}  // namespace vigil
