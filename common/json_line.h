// One message as one line of proto3 JSON (proto field names, defaults
// printed): the on-alert command's stdin and `vigil alerts --follow --json`
// read the same shape.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace vigil {

// "{}" if the message cannot be printed.
std::string JsonLine(const google::protobuf::Message& m);

}  // namespace vigil
