// The one place where PostgreSQL errors become absl::Status codes (the PostgreSQL twin of
// sqlite_status.h), and where an error is judged transient: worth retrying on the same or a new
// connection. Any thread.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace troupe {

// The status of a failed statement: `sqlstate` is the five-character SQLSTATE the server sent
// ("" when the connection broke and no server answered), `message` libpq's text, `what` the
// operation.
//   class 08 (connection), "" with a broken connection, 57P01-57P03 (server shutting down or
//   starting), 53300 (too many connections)          -> kUnavailable (transient)
//   40001 (serialization failure), 40P01 (deadlock)   -> kAborted (transient)
//   53100 (disk full), 53200 (out of memory), 54000 (a program limit)
//                                                      -> kResourceExhausted
//   class 22 (invalid data: bad UTF-8, a NUL byte in text, a value out of range)
//                                                      -> kInvalidArgument
//   57014 (statement timeout or cancel)                -> kDeadlineExceeded
//   class 28 (login refused), 3D000 (no such database), 42501 (no privilege)
//                                                      -> kFailedPrecondition
//   class XX (internal error: damaged data)            -> kDataLoss
//   anything else (constraint violations included: callers map those they expect)
//                                                      -> kInternal
absl::Status PostgresStatus(absl::string_view sqlstate, absl::string_view message, absl::string_view what);

// Whether a statement that failed with `sqlstate` may succeed if run again from the start of its
// transaction: the transient rows above.
bool IsTransientPostgresError(absl::string_view sqlstate);

}  // namespace troupe
