// The registry: every capability vigild runs, in collection order. Adding a
// capability is one line here (plus its folder, proto messages and client
// command). Order matters only for readers of other capabilities' tables:
// spin reads what syscalls and profile stored in the same interval, memory
// reads profile's page-fault stacks for its growth alerts.
#include "agent/agent.h"
#include "agent/cpu/cpu_capability.h"
#include "agent/memory/memory_capability.h"
#include "agent/probe/probe_capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/trace/trace_capability.h"
#include "agent/udpdrops/udpdrops_capability.h"

namespace vigil {

std::vector<std::unique_ptr<Capability>> RegisteredCapabilities(const AgentConfig& c) {
  std::vector<std::unique_ptr<Capability>> caps;
  // First: its pass is what the interval's end stamp claims, so it runs
  // before the others spend the interval's first milliseconds.
  caps.push_back(std::make_unique<CpuCapability>(c.cpu));
  caps.push_back(std::make_unique<SyscallsCapability>(c.syscalls, c.store_max_records,
                                                      c.metrics_max_processes));
  caps.push_back(std::make_unique<UdpDropsCapability>(c.udpdrops, c.store_max_records));
  caps.push_back(std::make_unique<ProfileCapability>(c.profile, c.profile_store_max_records,
                                                     c.profile_fault_store_max_records));
  caps.push_back(std::make_unique<SpinCapability>(c.spin));
  caps.push_back(std::make_unique<MemoryCapability>(c.memory));
  // On demand: nothing attached until a client starts a session. Probe's
  // --stacks walks with the profiler's unwinder, so it comes after profile.
  caps.push_back(std::make_unique<TraceCapability>(c.ondemand));
  caps.push_back(std::make_unique<ProbeCapability>(c.ondemand));
  return caps;
}

}  // namespace vigil
