// Text rendering shared by the CLI commands.
#pragma once

#include <cstdint>
#include <string>

#include "google/protobuf/message.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

// proto3 JSON mapping with the proto field names kept (not camelCase) and
// default values printed.
std::string ToJson(const google::protobuf::Message& m);

// "1.234 s", "12.3 ms", "456 us", "789 ns".
std::string HumanNs(uint64_t ns);

// The strace -c style table, one block per thread/process.
std::string FormatSyscalls(const v1::SyscallsResponse& r, v1::SyscallGroupBy by);

std::string FormatStatus(const v1::StatusResponse& s);

// The vigil drops table; with explain, each row's advice under it.
std::string FormatDrops(const v1::DropsResponse& r, bool explain);

}  // namespace vigil::cli
