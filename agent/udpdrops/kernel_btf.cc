#include "agent/udpdrops/kernel_btf.h"

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/bpf_util.h"
#include "bpf/udpdrops.h"

namespace vigil {
namespace {

constexpr absl::string_view kPrefix = "SKB_DROP_REASON_";
constexpr absl::string_view kUnknown = "unknown";

}  // namespace

absl::StatusOr<BtfPtr> LoadVmlinuxBtf() {
  BtfPtr b(btf__load_vmlinux_btf());
  if (!b) return ErrnoStatus(errno, "reading kernel BTF (/sys/kernel/btf/vmlinux)");
  return b;
}

absl::StatusOr<DropReasonTable> DropReasonTable::FromBtf(const btf* b) {
  const int id = btf__find_by_name_kind(b, "skb_drop_reason", BTF_KIND_ENUM);
  if (id < 0) {
    return absl::NotFoundError("kernel BTF has no enum skb_drop_reason (kernel before 5.17)");
  }
  const btf_type* t = btf__type_by_id(b, id);
  const struct btf_enum* e = btf_enum(t);
  DropReasonTable table;
  for (int i = 0; i < btf_vlen(t); ++i, ++e) {
    const char* raw = btf__name_by_offset(b, e->name_off);
    if (raw == nullptr) continue;
    absl::string_view name = raw;
    if (name == "SKB_DROP_REASON_MAX") continue;
    absl::ConsumePrefix(&name, kPrefix);
    const uint32_t value = static_cast<uint32_t>(e->val);
    // Aliases (two names, one value) keep the first name.
    table.by_value_.try_emplace(value, std::string(name));
    table.by_upper_name_.try_emplace(absl::AsciiStrToUpper(name), value);
  }
  if (table.by_value_.empty()) return absl::NotFoundError("enum skb_drop_reason is empty");
  return table;
}

std::string DropReasonTable::Name(uint32_t value) const {
  if (value == UDPDROP_REASON_UNKNOWN) return std::string(kUnknown);
  auto it = by_value_.find(value);
  if (it != by_value_.end()) return it->second;
  return absl::StrCat("reason_", value);
}

std::optional<uint32_t> DropReasonTable::Value(absl::string_view name) const {
  if (absl::EqualsIgnoreCase(name, kUnknown)) return UDPDROP_REASON_UNKNOWN;
  std::string upper = absl::AsciiStrToUpper(name);
  absl::string_view key = upper;
  absl::ConsumePrefix(&key, kPrefix);
  auto it = by_upper_name_.find(key);
  if (it == by_upper_name_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<int> TracepointArgCount(const btf* b, absl::string_view name) {
  const std::string typedef_name = absl::StrCat("btf_trace_", name);
  const int id = btf__find_by_name_kind(b, typedef_name.c_str(), BTF_KIND_TYPEDEF);
  if (id < 0) return absl::NotFoundError(absl::StrCat("kernel BTF has no ", typedef_name));
  const btf_type* t = btf__type_by_id(b, btf__type_by_id(b, id)->type);  // the pointer
  if (t == nullptr || !btf_is_ptr(t)) {
    return absl::FailedPreconditionError(absl::StrCat(typedef_name, " is not a pointer"));
  }
  t = btf__type_by_id(b, t->type);
  if (t == nullptr || !btf_is_func_proto(t) || btf_vlen(t) < 1) {
    return absl::FailedPreconditionError(absl::StrCat(typedef_name, " is not a function pointer"));
  }
  return btf_vlen(t) - 1;  // the first parameter is the tracepoint's context
}

}  // namespace vigil
