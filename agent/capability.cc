#include "agent/capability.h"

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace vigil {

v1::CapabilityState ToProto(CapabilityState s) {
  switch (s) {
    case CapabilityState::kOn:
      return v1::CAPABILITY_STATE_RUNNING;
    case CapabilityState::kDegraded:
      return v1::CAPABILITY_STATE_DEGRADED;
    default:
      return v1::CAPABILITY_STATE_OFF;
  }
}

const Capability* InitContext::Find(const std::string& name) const {
  for (const Capability* c : earlier) {
    if (name == c->name()) return c;
  }
  return nullptr;
}

void LossesToProto(const std::vector<std::pair<std::string, uint64_t>>& losses,
                   google::protobuf::Message* out) {
  const google::protobuf::Descriptor* d = out->GetDescriptor();
  const google::protobuf::Reflection* r = out->GetReflection();
  for (const auto& [cause, count] : losses) {
    const google::protobuf::FieldDescriptor* f =
        d->FindFieldByName(cause == "window_cap" ? "store_dropped" : cause);
    if (f == nullptr || f->is_repeated() ||
        f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      continue;
    }
    r->SetUInt64(out, f, count);
  }
}

}  // namespace vigil
