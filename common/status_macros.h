// The early returns every Status-returning step repeats, written once.
//   VIGIL_RETURN_IF_ERROR(Attach());
//   VIGIL_ASSIGN_OR_RETURN(collector_, CpuCollector::Create(config_));
//   VIGIL_ASSIGN_OR_RETURN(SyscallQuery q, ValidateSyscallsRequest(req));
// (Abseil of Debian 12 does not ship its own.) The left-hand side of
// VIGIL_ASSIGN_OR_RETURN must not contain an unparenthesized comma.
#pragma once

#include <utility>

#include "absl/status/status.h"

#define VIGIL_RETURN_IF_ERROR(expr)                                   \
  do {                                                                \
    if (::absl::Status vigil_status_ = (expr); !vigil_status_.ok()) { \
      return vigil_status_;                                           \
    }                                                                 \
  } while (0)

#define VIGIL_STATUS_CONCAT_INNER_(a, b) a##b
#define VIGIL_STATUS_CONCAT_(a, b) VIGIL_STATUS_CONCAT_INNER_(a, b)
#define VIGIL_ASSIGN_OR_RETURN(lhs, rexpr) \
  VIGIL_ASSIGN_OR_RETURN_IMPL_(VIGIL_STATUS_CONCAT_(vigil_statusor_, __LINE__), lhs, rexpr)
#define VIGIL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)
