// The one place where SQLite result codes become absl::Status codes, so that callers (and gRPC
// clients) can tell a full disk, a busy database and a damaged file apart. Any thread.
#pragma once

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace troupe {

// The status of a failed SQLite call on the database file `path`: `code` is the (primary or
// extended) result code, `message` SQLite's text for it, `what` the operation. REQUIRES: code
// is an error (not SQLITE_OK, SQLITE_ROW or SQLITE_DONE).
//   SQLITE_FULL (disk full, or the file at its size cap)  -> kResourceExhausted
//   SQLITE_BUSY, SQLITE_LOCKED (another connection holds the lock past the busy timeout)
//                                                          -> kUnavailable (retry)
//   SQLITE_CORRUPT, SQLITE_NOTADB (the file is damaged)   -> kDataLoss
//   SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM          -> kFailedPrecondition
//   anything else                                          -> kInternal
// The message names the file and the operation.
absl::Status SqliteStatus(int code, absl::string_view message, absl::string_view path,
                          absl::string_view what);

}  // namespace troupe
