// SafeText over every string field of a message, recursively: the agent's
// responses carry names other users chose, and proto3 requires valid UTF-8.
#pragma once

#include <google/protobuf/message.h>

namespace vigil {

// Rewrites, in place, each string field (singular or repeated, at any depth,
// including google.protobuf.Value strings) that is not SafeText already.
void MakeStringsSafe(google::protobuf::Message* m);

}  // namespace vigil
