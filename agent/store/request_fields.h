// Request fields several queries share, checked one way: a request is a
// client's untrusted input, so a bad value is INVALID_ARGUMENT, never a
// crash or a silent default.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vigil {

// An enum field (sort, group_by, frames, ...): 0, the proto's UNSPECIFIED,
// means `def`; a number the proto does not define (an older agent, or a
// hand-made request) is refused, naming the field. `is_valid` is the
// generated v1::<Enum>_IsValid.
template <typename E>
absl::StatusOr<E> EnumField(int value, bool (*is_valid)(int), E def, absl::string_view field) {
  if (!is_valid(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", value, " is not a known value"));
  }
  return value == 0 ? def : static_cast<E>(value);
}

}  // namespace vigil
