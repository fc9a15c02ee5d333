#include "engine/store/sqlite_status.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace troupe {

absl::Status SqliteStatus(int code, absl::string_view message, absl::string_view path,
                          absl::string_view what) {
  const std::string detail = absl::StrCat(what, ": ", message);
  switch (code & 0xff) {  // the primary code of an extended one
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(
          absl::StrCat("database ", path, " is full (no space left on the disk, or the file at its "
                       "size limit): ", detail));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(
          "database ", path, " is locked by another connection; retry: ", detail));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat("database ", path, " is damaged: ", detail));
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return absl::FailedPreconditionError(
          absl::StrCat("database ", path, " cannot be written: ", detail));
    default:
      return absl::InternalError(absl::StrCat("database ", path, ": ", detail));
  }
}

}  // namespace troupe
