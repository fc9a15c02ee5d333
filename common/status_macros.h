// TROUPE_RETURN_IF_ERROR(expr) and TROUPE_ASSIGN_OR_RETURN(lhs, expr) for absl::Status plumbing.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TROUPE_STATUS_CONCAT_INNER_(a, b) a##b
#define TROUPE_STATUS_CONCAT_(a, b) TROUPE_STATUS_CONCAT_INNER_(a, b)

#define TROUPE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status troupe_status_ = (expr);          \
    if (!troupe_status_.ok()) return troupe_status_; \
  } while (0)

#define TROUPE_ASSIGN_OR_RETURN(lhs, expr) \
  TROUPE_ASSIGN_OR_RETURN_IMPL_(TROUPE_STATUS_CONCAT_(troupe_statusor_, __LINE__), lhs, expr)

#define TROUPE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
