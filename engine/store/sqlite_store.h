// The embedded Store: one SQLite database file in WAL mode with synchronous=FULL, so every
// committed call is on disk before it returns (survives kill -9 and power loss), and readers
// never block the writer. One connection, serialised by a mutex: the role-play layer's writes
// are a few per chat turn, far below what one connection sustains.
//
// Schema (version 3, in sqlite_store.cc, built by numbered migrations kept in user_version):
// characters, sessions, turns, memories; characters, sessions and memories carry their tenant
// (a version 1 database is migrated on open, its rows going to the anonymous tenant ""), and
// sessions a version (version 3). Vectors
// are stored as little-endian float32 BLOBs.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/store/store.h"

struct sqlite3;

namespace troupe {

struct SqliteStoreOptions {
  // How long a call waits for a lock another connection holds; past it the call fails with
  // kUnavailable.
  absl::Duration busy_timeout = absl::Seconds(5);
  // The most pages (4 KiB each by default) the file may hold (PRAGMA max_page_count); a write past it
  // fails with kResourceExhausted, as on a full disk. 0 = SQLite's own limit.
  int64_t max_pages = 0;
};

// Errors of every call are mapped in one place (sqlite_status.h): a full disk is
// kResourceExhausted, a database locked by another connection kUnavailable, a damaged file
// kDataLoss; each message names the file.
class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path` (its folder must exist), checks every page's
  // structure (PRAGMA quick_check) and applies the schema, migrating an older one.
  // kFailedPrecondition, naming the file, for a file that is not a troupe database, is damaged
  // (fails the check), has a newer schema or cannot be migrated; kUnavailable when another
  // connection holds it locked past the busy timeout.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path, const SqliteStoreOptions& options = {});
  ~SqliteStore() override;

  absl::Status PutCharacter(const std::string& tenant, const CharacterRecord& character) override;
  absl::StatusOr<CharacterRecord> GetCharacter(const std::string& tenant, const std::string& id) override;
  absl::StatusOr<std::vector<CharacterRecord>> ListCharacters(const std::string& tenant,
                                                              const PageRequest& page) override;
  absl::Status DeleteCharacter(const std::string& tenant, const std::string& id) override;

  absl::Status CreateSession(const std::string& tenant, const SessionRecord& session) override;
  absl::StatusOr<SessionRecord> GetSession(const std::string& tenant, const std::string& id) override;
  absl::StatusOr<std::vector<SessionRecord>> ListSessions(const std::string& tenant,
                                                          const std::string& character_id,
                                                          const PageRequest& page) override;
  absl::StatusOr<std::vector<SessionRecord>> ListSessionsOfAllTenants(const PageRequest& page) override;
  absl::Status UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                  const std::string& setup_json) override;
  absl::Status DeleteSession(const std::string& tenant, const std::string& id) override;

  absl::Status AppendTurn(const std::string& tenant, const TurnRecord& turn) override;
  absl::Status UpdateSessionMood(const std::string& tenant, const std::string& id,
                                 const std::array<float, 8>& mood) override;
  absl::StatusOr<std::vector<TurnRecord>> ListTurns(const std::string& tenant,
                                                    const std::string& session_id) override;

  absl::StatusOr<int64_t> AddMemory(const std::string& tenant, const MemoryRecord& memory) override;
  absl::Status UpdateMemoryRating(const std::string& tenant, int64_t id, const std::array<float, 8>& emotion,
                                  float importance) override;
  absl::Status ReplaceCharacterMemories(const std::string& tenant, const std::string& character_id,
                                        const std::vector<MemoryRecord>& memories) override;
  absl::StatusOr<std::vector<MemoryRecord>> ListCharacterMemories(const std::string& tenant,
                                                                  const std::string& character_id) override;
  absl::StatusOr<std::vector<MemoryRecord>> ListMemories() override;
  absl::StatusOr<std::vector<MemoryRecord>> ListSessionMemories(const std::string& tenant,
                                                                const std::string& session_id) override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  // Open's settings, checks and schema on the fresh connection `db`.
  static absl::Status Prepare(sqlite3* db, const std::string& path, const SqliteStoreOptions& options);
  absl::StatusOr<int64_t> InsertMemoryLocked(const std::string& tenant, const MemoryRecord& memory)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_;  // owned; closed in the destructor
};

}  // namespace troupe
