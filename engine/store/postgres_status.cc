#include "engine/store/postgres_status.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace troupe {

bool IsTransientPostgresError(absl::string_view sqlstate) {
  return sqlstate.empty() || absl::StartsWith(sqlstate, "08") || sqlstate == "57P01" ||
         sqlstate == "57P02" || sqlstate == "57P03" || sqlstate == "53300" || sqlstate == "40001" ||
         sqlstate == "40P01";
}

absl::Status PostgresStatus(absl::string_view sqlstate, absl::string_view message, absl::string_view what) {
  const std::string detail =
      absl::StrCat(what, ": ", message, sqlstate.empty() ? "" : absl::StrCat(" (SQLSTATE ", sqlstate, ")"));
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return absl::AbortedError(absl::StrCat("database transaction conflicted with another; retry: ", detail));
  }
  if (IsTransientPostgresError(sqlstate)) {
    return absl::UnavailableError(absl::StrCat("database unavailable; retry: ", detail));
  }
  if (sqlstate == "53100" || sqlstate == "53200" || sqlstate == "54000") {
    return absl::ResourceExhaustedError(absl::StrCat("database out of resources: ", detail));
  }
  if (absl::StartsWith(sqlstate, "22")) {
    return absl::InvalidArgumentError(absl::StrCat("the database refused the data: ", detail));
  }
  if (sqlstate == "57014") return absl::DeadlineExceededError(absl::StrCat("database statement timed out: ", detail));
  if (absl::StartsWith(sqlstate, "28") || sqlstate == "3D000" || sqlstate == "42501") {
    return absl::FailedPreconditionError(absl::StrCat("the database refused troupe: ", detail));
  }
  if (absl::StartsWith(sqlstate, "XX")) return absl::DataLossError(absl::StrCat("database is damaged: ", detail));
  return absl::InternalError(absl::StrCat("database: ", detail));
}

}  // namespace troupe
