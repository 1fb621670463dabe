#include "common/safe_proto.h"

#include <google/protobuf/descriptor.h>

#include <string>

#include "common/safe_text.h"

namespace vigil {

void MakeStringsSafe(google::protobuf::Message* m) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);  // only fields that are set: cheap on sparse messages
  std::string scratch;
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        f->type() != FieldDescriptor::TYPE_BYTES) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          const std::string& v = r->GetRepeatedStringReference(*m, f, i, &scratch);
          if (!IsSafeText(v)) r->SetRepeatedString(m, f, i, SafeText(v));
        }
      } else {
        const std::string& v = r->GetStringReference(*m, f, &scratch);
        if (!IsSafeText(v)) r->SetString(m, f, SafeText(v));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          MakeStringsSafe(r->MutableRepeatedMessage(m, f, i));
        }
      } else {
        MakeStringsSafe(r->MutableMessage(m, f));
      }
    }
  }
}

}  // namespace vigil
