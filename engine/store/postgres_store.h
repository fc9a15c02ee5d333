// The Store on a PostgreSQL server (libpq), for several troupe replicas sharing one database
// (`--database postgresql://...`, docs/operations.md). Same contract as SqliteStore: a call that
// returns OK has committed (the server's synchronous_commit decides what "on disk" means; its
// default, on, flushes the WAL before COMMIT returns), tenants see only their own records.
//
// Connections: a PostgresPool (postgres_pool.h) of a few connections, so replicas' and one
// replica's workers' calls run concurrently; a call that fails for a transient reason (a dropped
// connection, a restarting server, a serialization failure) is run again after a backoff. A
// retried write whose first try may have committed finds its own effect: a turn or session with
// the same contents, a memory with the same turn and text, a row already deleted.
//
// Concurrency between replicas: AppendTurn locks the session's row (SELECT ... FOR UPDATE) and
// checks the turn index, so two replicas appending turn N of one session commit one turn N and
// the other gets kAborted; the turns' primary key backs this up.
//
// Schema (version 2, in postgres_store.cc): the tables of SqliteStore's version 3, with ids
// ordered bytewise (COLLATE "C", as SQLite orders them) and vectors as bytea of little-endian
// float32. Versions live in the table troupe_schema; Open applies missing migrations under an
// advisory lock, so replicas starting together migrate once. Text must be valid UTF-8 without
// NUL bytes (PostgreSQL's text type); other text fails with kInvalidArgument.
#pragma once

#include <memory>
#include <string>

#include "engine/store/postgres_pool.h"
#include "engine/store/store.h"

namespace troupe {

class PostgresStore final : public Store {
 public:
  // Connects to `url` (a libpq URI: postgresql://user:password@host:port/db?sslmode=...), checks
  // the schema and migrates an older one. kFailedPrecondition for a refused login, a missing
  // database or a newer schema; kUnavailable for a server that does not answer. Messages leave
  // the password out.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& url,
                                                                           const PostgresPoolOptions& options = {});

  bool shared() const override { return true; }

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
  absl::StatusOr<std::vector<MemoryRecord>> ListMemoriesAfter(int64_t after_id, int limit) override;
  absl::StatusOr<std::vector<MemoryRecord>> ListSessionMemories(const std::string& tenant,
                                                                const std::string& session_id) override;

 private:
  explicit PostgresStore(std::unique_ptr<PostgresPool> pool) : pool_(std::move(pool)) {}
  absl::Status Migrate();

  const std::unique_ptr<PostgresPool> pool_;
};

}  // namespace troupe
