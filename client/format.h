// Text rendering shared by the CLI commands.
#pragma once

#include <cstdint>
#include <string>

#include "google/protobuf/message.h"
#include "vigil/v1/fleet.pb.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

// proto3 JSON mapping with the proto field names kept (not camelCase) and
// default values printed.
std::string ToJson(const google::protobuf::Message& m);

// "1.234 s", "12.3 ms", "456 us", "789 ns".
std::string HumanNs(uint64_t ns);

// "123 B", "4.0 KiB", "-1.5 GiB" (a shrinking process's growth is
// negative); under half a byte is "0 B".
std::string HumanBytes(double bytes);

// The strace -c style table, one block per thread/process.
std::string FormatSyscalls(const v1::SyscallsResponse& r, v1::SyscallGroupBy by);

// Several agents' answers as one table: blocks ranked together by `sort`,
// at most `top`, each headed with its host.
std::string FormatFleetSyscalls(const v1::FleetSyscallsResponse& r, v1::SyscallGroupBy by,
                                v1::SyscallSort sort, uint32_t top);

std::string FormatStatus(const v1::StatusResponse& s);
// The profiler's unwinder lines of FormatStatus.
std::string FormatUnwinder(const v1::UnwinderStatus& u);

// The vigil drops table; with explain, each row's advice under it.
std::string FormatDrops(const v1::DropsResponse& r, bool explain);

// A process's top growing stacks, each line prefixed by `indent`: with
// leaf_only one line per stack (bytes, share, leaf function and module, as
// vigil alerts prints them), else every frame under its bytes. Says why
// when there are none.
std::string FormatGrowingStacks(const v1::GrowingStacks& g, bool leaf_only,
                                const std::string& indent);
// A process's large mmap/munmap/brk calls: `compact` one line per stack
// (bytes, calls, call, the leaf and the first three frames outside the
// leaf's module), else every frame under its bytes. Says why when there are
// none.
std::string FormatLargeMapCalls(const v1::LargeMapCalls& m, bool compact,
                                const std::string& indent);

}  // namespace vigil::cli
