// What the udpdrops capability reads from the running kernel's BTF at
// start-up: the names of enum skb_drop_reason (never hard-coded numbers, as
// they change between kernel versions) and the shape of the kfree_skb
// tracepoint, which picks the program variant to load.
#pragma once

#include <bpf/btf.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_c.h"

namespace vigil {

using BtfPtr = UniqueC<btf, btf__free>;

// The running kernel's BTF (/sys/kernel/btf/vmlinux).
absl::StatusOr<BtfPtr> LoadVmlinuxBtf();

// Drop reason value <-> name, from `enum skb_drop_reason`. Names drop the
// SKB_DROP_REASON_ prefix ("SOCKET_RCVBUFF"); SKB_CONSUMED and
// SKB_NOT_DROPPED_YET keep theirs.
class DropReasonTable {
 public:
  // Empty: a kernel without reasons. Every drop is then "unknown".
  DropReasonTable() = default;

  // NOT_FOUND if the BTF has no enum skb_drop_reason.
  static absl::StatusOr<DropReasonTable> FromBtf(const btf* b);

  bool empty() const { return by_value_.empty(); }
  size_t size() const { return by_value_.size(); }

  // "SOCKET_RCVBUFF"; "unknown" for UDPDROP_REASON_UNKNOWN; "reason_N" for a
  // value the table does not name.
  std::string Name(uint32_t value) const;
  // Accepts a name with or without the prefix, in any case, or "unknown"
  // (UDPDROP_REASON_UNKNOWN). nullopt if the kernel has no such reason.
  std::optional<uint32_t> Value(absl::string_view name) const;

  // Values that mean "not dropped", if this kernel has them.
  std::optional<uint32_t> not_dropped_yet() const { return Value("SKB_NOT_DROPPED_YET"); }
  std::optional<uint32_t> consumed() const { return Value("SKB_CONSUMED"); }

 private:
  absl::flat_hash_map<uint32_t, std::string> by_value_;
  absl::flat_hash_map<std::string, uint32_t> by_upper_name_;
};

// Number of arguments of raw tracepoint `name` (not counting the leading
// context pointer), from its btf_trace_<name> typedef. NOT_FOUND if absent.
absl::StatusOr<int> TracepointArgCount(const btf* b, absl::string_view name);

}  // namespace vigil
