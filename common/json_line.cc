#include "common/json_line.h"

#include <google/protobuf/util/json_util.h>

namespace vigil {

std::string JsonLine(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, opts).ok()) return "{}";
  return out;
}

}  // namespace vigil
