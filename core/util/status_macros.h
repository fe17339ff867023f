// Early-return helpers for absl::Status and absl::StatusOr.
//
// Abseil 20220623 (Debian 12) ships neither RETURN_IF_ERROR nor
// ASSIGN_OR_RETURN, so the project defines its own, once.
#ifndef QUANTFLEET_CORE_UTIL_STATUS_MACROS_H_
#define QUANTFLEET_CORE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QF_CONCAT_INNER_(a, b) a##b
#define QF_CONCAT_(a, b) QF_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define QF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status qf_status_ = (expr);      \
    if (!qf_status_.ok()) return qf_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration).
#define QF_ASSIGN_OR_RETURN(lhs, rexpr) QF_ASSIGN_OR_RETURN_IMPL_(QF_CONCAT_(qf_statusor_, __LINE__), lhs, rexpr)

#define QF_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

#endif  // QUANTFLEET_CORE_UTIL_STATUS_MACROS_H_
