#include "engine/store/sqlite_status.h"

#include <sqlite3.h>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(SqliteStatusTest, MapsEachFailureClassToItsCodeAndNamesTheFile) {
  struct Case {
    int code;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {SQLITE_FULL, absl::StatusCode::kResourceExhausted},
      {SQLITE_BUSY, absl::StatusCode::kUnavailable},
      {SQLITE_BUSY_SNAPSHOT, absl::StatusCode::kUnavailable},  // extended codes map by their primary
      {SQLITE_LOCKED, absl::StatusCode::kUnavailable},
      {SQLITE_CORRUPT, absl::StatusCode::kDataLoss},
      {SQLITE_NOTADB, absl::StatusCode::kDataLoss},
      {SQLITE_READONLY, absl::StatusCode::kFailedPrecondition},
      {SQLITE_IOERR_WRITE, absl::StatusCode::kInternal},
      {SQLITE_ERROR, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    const absl::Status status = SqliteStatus(c.code, sqlite3_errstr(c.code), "/data/troupe.db", "append turn");
    EXPECT_EQ(status.code(), c.want) << c.code << ": " << status;
    EXPECT_NE(status.message().find("/data/troupe.db"), std::string::npos) << status;
    EXPECT_NE(status.message().find("append turn"), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace troupe
