#include "engine/store/postgres_store.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace troupe {
namespace {

// Migration i takes the database from version i to i + 1, in one transaction with its version
// bump. Never edit a shipped migration; append one.
//
// Version 1: characters, sessions, turns, memories, each character, session and memory a
// tenant's (turns belong to their session's tenant).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE characters (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL,
  card_json TEXT NOT NULL,
  create_time_ms BIGINT NOT NULL,
  update_time_ms BIGINT NOT NULL
);
CREATE INDEX characters_by_tenant ON characters (tenant, id);
CREATE TABLE sessions (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL,
  character_id TEXT COLLATE "C" NOT NULL REFERENCES characters (id),
  user_id TEXT NOT NULL,
  setup_json TEXT NOT NULL,
  mood BYTEA NOT NULL,
  create_time_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_tenant ON sessions (tenant, id);
CREATE INDEX sessions_by_tenant_character ON sessions (tenant, character_id, id);
CREATE TABLE turns (
  session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  turn_index INTEGER NOT NULL,
  user_text TEXT NOT NULL,
  context_text TEXT NOT NULL,
  reply_text TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  PRIMARY KEY (session_id, turn_index)
);
CREATE TABLE memories (
  id BIGSERIAL PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL,
  scope INTEGER NOT NULL,
  character_id TEXT COLLATE "C" NOT NULL,
  user_id TEXT NOT NULL,
  session_id TEXT COLLATE "C" NOT NULL,
  turn_index INTEGER NOT NULL,
  text TEXT NOT NULL,
  embedding BYTEA NOT NULL,
  emotion BYTEA NOT NULL,
  importance REAL NOT NULL,
  wall_time_ms BIGINT NOT NULL,
  story_time BIGINT
);
CREATE INDEX memories_by_session ON memories (session_id, id);
CREATE INDEX memories_by_tenant_character ON memories (tenant, character_id, scope, id);
)sql";

// Version 2: sessions carry a version, bumped by each turn and setup change (Store's
// SessionRecord::version), which replicas compare with the copy they hold; a turn has at most
// one memory per scope, whichever replica writes it first.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX memories_one_per_turn ON memories (tenant, session_id, turn_index, scope)
  WHERE turn_index >= 0;
)sql";

// Version 3: a memory is stored when its turn is acknowledged, with a provisional emotion, and
// rated later; rated is false until then (a start re-rates what a crash left unrated).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE memories ADD COLUMN rated BOOLEAN NOT NULL DEFAULT TRUE;
)sql";

constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// Taken by the connection that migrates: replicas starting at once migrate one after another.
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(7310411)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(7310411)";

// The SQLSTATEs of the constraint violations callers turn into their own codes.
constexpr const char* kUniqueViolation = "23505";
constexpr const char* kForeignKeyViolation = "23503";
bool Violated(const PgConnection& c, const char* sqlstate) { return c.sqlstate() == sqlstate; }

int64_t ClampLimit(int limit) { return limit <= 0 || limit > 1000 ? 1000 : limit; }

constexpr const char* kSessionColumns =
    "SELECT id, character_id, user_id, setup_json, mood, create_time_ms, tenant, version FROM sessions ";

SessionRecord ReadSession(const PgRows& r, int row) {
  SessionRecord s;
  s.id = r.Text(row, 0);
  s.character_id = r.Text(row, 1);
  s.user_id = r.Text(row, 2);
  s.setup_json = r.Text(row, 3);
  s.mood = r.Emotion(row, 4);
  s.create_time_ms = r.Int(row, 5);
  s.tenant = r.Text(row, 6);
  s.version = r.Int(row, 7);
  return s;
}

CharacterRecord ReadCharacter(const PgRows& r, int row) {
  return {.id = r.Text(row, 0), .card_json = r.Text(row, 1), .create_time_ms = r.Int(row, 2),
          .update_time_ms = r.Int(row, 3)};
}

constexpr const char* kMemoryColumns =
    "SELECT id, scope, character_id, user_id, session_id, turn_index, text, embedding, emotion, "
    "importance, wall_time_ms, story_time, tenant, rated FROM memories ";

MemoryRecord ReadMemory(const PgRows& r, int row) {
  MemoryRecord m;
  m.id = r.Int(row, 0);
  m.scope = static_cast<MemoryScope>(r.Int(row, 1));
  m.character_id = r.Text(row, 2);
  m.user_id = r.Text(row, 3);
  m.session_id = r.Text(row, 4);
  m.turn_index = static_cast<int>(r.Int(row, 5));
  m.text = r.Text(row, 6);
  m.embedding = r.Floats(row, 7);
  m.emotion = r.Emotion(row, 8);
  m.importance = static_cast<float>(r.Double(row, 9));
  m.wall_time_ms = r.Int(row, 10);
  if (!r.IsNull(row, 11)) m.story_time = r.Int(row, 11);
  m.tenant = r.Text(row, 12);
  m.rated = r.Bool(row, 13);
  return m;
}

absl::StatusOr<std::vector<MemoryRecord>> ReadMemories(absl::StatusOr<PgRows> rows) {
  TROUPE_RETURN_IF_ERROR(rows.status());
  std::vector<MemoryRecord> out;
  out.reserve(rows->size());
  for (int i = 0; i < rows->size(); ++i) out.push_back(ReadMemory(*rows, i));
  return out;
}

// Inserts a memory; nullopt when the turn already has a memory of that scope.
absl::StatusOr<std::optional<int64_t>> InsertMemory(PgConnection& c, const std::string& tenant,
                                                    const MemoryRecord& m) {
  TROUPE_ASSIGN_OR_RETURN(
      PgRows rows,
      c.Exec("add memory",
             "INSERT INTO memories (scope, character_id, user_id, session_id, turn_index, text, embedding, "
             "emotion, importance, wall_time_ms, story_time, tenant, rated) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
             "ON CONFLICT (tenant, session_id, turn_index, scope) WHERE turn_index >= 0 DO NOTHING RETURNING id",
             {PgParam::Int(static_cast<int64_t>(m.scope)), PgParam::Text(m.character_id), PgParam::Text(m.user_id),
              PgParam::Text(m.session_id), PgParam::Int(m.turn_index), PgParam::Text(m.text),
              PgParam::Floats(m.embedding.data(), m.embedding.size()),
              PgParam::Floats(m.emotion.data(), m.emotion.size()), PgParam::Real(m.importance),
              PgParam::Int(m.wall_time_ms), m.story_time ? PgParam::Int(*m.story_time) : PgParam::Null(),
              PgParam::Text(tenant), PgParam::Bool(m.rated)}));
  if (rows.size() == 0) return std::nullopt;
  return rows.Int(0, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                                   const PostgresPoolOptions& options) {
  TROUPE_ASSIGN_OR_RETURN(std::unique_ptr<PostgresPool> pool, PostgresPool::Open(url, options));
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(pool)));
  TROUPE_RETURN_IF_ERROR(store->Migrate());
  return store;
}

absl::Status PostgresStore::Migrate() {
  const std::string& where = pool_->display_url();
  return pool_->Run("migrate the schema", /*transaction=*/false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_RETURN_IF_ERROR(c.Run("lock the schema", kMigrationLock));
    auto migrate = [&]() -> absl::Status {
      TROUPE_RETURN_IF_ERROR(
          c.Run("create troupe_schema", "CREATE TABLE IF NOT EXISTS troupe_schema (version INTEGER NOT NULL)"));
      TROUPE_ASSIGN_OR_RETURN(PgRows found, c.Exec("read the schema version", "SELECT version FROM troupe_schema"));
      int64_t version = 0;
      if (found.size() == 0) {
        TROUPE_RETURN_IF_ERROR(c.Run("start troupe_schema", "INSERT INTO troupe_schema (version) VALUES (0)"));
      } else {
        version = found.Int(0, 0);
      }
      if (version > kSchemaVersion) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, " has troupe schema version ", version, "; this troupe reads up to ", kSchemaVersion));
      }
      for (int64_t v = version; v < kSchemaVersion; ++v) {
        TROUPE_RETURN_IF_ERROR(c.Run("begin a migration", "BEGIN"));
        absl::Status step = c.RunScript("migrate", kMigrations[v]);
        if (step.ok()) {
          step = c.Run("bump the schema version", "UPDATE troupe_schema SET version = $1", {PgParam::Int(v + 1)});
        }
        if (step.ok()) step = c.Run("commit a migration", "COMMIT");
        if (!step.ok()) {
          if (c.connected()) (void)c.Run("roll back a migration", "ROLLBACK");
          return absl::Status(step.code(), absl::StrCat("cannot migrate ", where, " from schema version ", v,
                                                        " to ", v + 1, ": ", step.message()));
        }
      }
      return absl::OkStatus();
    };
    const absl::Status migrated = migrate();
    if (c.connected()) (void)c.Run("unlock the schema", kMigrationUnlock);
    return migrated;
  });
}

absl::Status PostgresStore::PutCharacter(const std::string& tenant, const CharacterRecord& ch) {
  return pool_->Run("put character", false, [&](PgConnection& c, bool) -> absl::Status {
    // The upsert's WHERE leaves another tenant's row alone, and changes nothing.
    TROUPE_ASSIGN_OR_RETURN(
        PgRows done,
        c.Exec("put character",
               "INSERT INTO characters (id, card_json, create_time_ms, update_time_ms, tenant) "
               "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET card_json = EXCLUDED.card_json, "
               "update_time_ms = EXCLUDED.update_time_ms WHERE characters.tenant = EXCLUDED.tenant",
               {PgParam::Text(ch.id), PgParam::Text(ch.card_json), PgParam::Int(ch.create_time_ms),
                PgParam::Int(ch.update_time_ms), PgParam::Text(tenant)}));
    if (done.affected() == 0) return absl::NotFoundError(absl::StrCat("character ", ch.id, " not found"));
    return absl::OkStatus();
  });
}

absl::StatusOr<CharacterRecord> PostgresStore::GetCharacter(const std::string& tenant, const std::string& id) {
  CharacterRecord out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("get character", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows rows, c.Exec("get character",
                                                 "SELECT id, card_json, create_time_ms, update_time_ms "
                                                 "FROM characters WHERE id = $1 AND tenant = $2",
                                                 {PgParam::Text(id), PgParam::Text(tenant)}));
    if (rows.size() == 0) return absl::NotFoundError(absl::StrCat("character ", id, " not found"));
    out = ReadCharacter(rows, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<CharacterRecord>> PostgresStore::ListCharacters(const std::string& tenant,
                                                                           const PageRequest& page) {
  std::vector<CharacterRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list characters", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows rows, c.Exec("list characters",
                                                 "SELECT id, card_json, create_time_ms, update_time_ms FROM characters "
                                                 "WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3",
                                                 {PgParam::Text(tenant), PgParam::Text(page.after_id),
                                                  PgParam::Int(ClampLimit(page.limit))}));
    out.clear();
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadCharacter(rows, i));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresStore::DeleteCharacter(const std::string& tenant, const std::string& id) {
  return pool_->Run("delete character", true, [&](PgConnection& c, bool may_have_committed) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows owned, c.Exec("delete character",
                                                 "SELECT 1 FROM characters WHERE id = $1 AND tenant = $2 FOR UPDATE",
                                                 {PgParam::Text(id), PgParam::Text(tenant)}));
    if (owned.size() == 0) {
      // A retry that finds nothing: the first try's COMMIT went through.
      return may_have_committed ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("character ", id, " not found"));
    }
    TROUPE_ASSIGN_OR_RETURN(PgRows used, c.Exec("count sessions",
                                                "SELECT COUNT(*) FROM sessions WHERE tenant = $1 AND character_id = $2",
                                                {PgParam::Text(tenant), PgParam::Text(id)}));
    auto in_use = [&](int64_t n) {
      return absl::FailedPreconditionError(
          absl::StrCat("character ", id, " is used by ", n, " session(s); delete them first"));
    };
    if (const int64_t n = used.Int(0, 0); n > 0) return in_use(n);
    const absl::Status deleted = c.Run("delete character", "DELETE FROM characters WHERE id = $1 AND tenant = $2",
                                       {PgParam::Text(id), PgParam::Text(tenant)});
    // A session another replica created since the count holds the key.
    if (!deleted.ok() && Violated(c, kForeignKeyViolation)) return in_use(1);
    TROUPE_RETURN_IF_ERROR(deleted);
    return c.Run("delete character memories",
                 "DELETE FROM memories WHERE tenant = $1 AND character_id = $2 AND scope = $3",
                 {PgParam::Text(tenant), PgParam::Text(id), PgParam::Int(static_cast<int64_t>(MemoryScope::kCharacter))});
  });
}

absl::Status PostgresStore::CreateSession(const std::string& tenant, const SessionRecord& s) {
  return pool_->Run("create session", true, [&](PgConnection& c, bool may_have_committed) -> absl::Status {
    if (may_have_committed) {  // the first try's COMMIT may have gone through: then the session is ours
      TROUPE_ASSIGN_OR_RETURN(PgRows mine, c.Exec("create session",
                                                  "SELECT 1 FROM sessions WHERE id = $1 AND tenant = $2 AND "
                                                  "character_id = $3 AND create_time_ms = $4",
                                                  {PgParam::Text(s.id), PgParam::Text(tenant),
                                                   PgParam::Text(s.character_id), PgParam::Int(s.create_time_ms)}));
      if (mine.size() == 1) return absl::OkStatus();
    }
    absl::StatusOr<PgRows> inserted = c.Exec(
        "create session",
        "INSERT INTO sessions (id, character_id, user_id, setup_json, mood, create_time_ms, tenant) "
        "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS "
        "(SELECT 1 FROM characters WHERE id = $2 AND tenant = $7)",
        {PgParam::Text(s.id), PgParam::Text(s.character_id), PgParam::Text(s.user_id), PgParam::Text(s.setup_json),
         PgParam::Floats(s.mood.data(), s.mood.size()), PgParam::Int(s.create_time_ms), PgParam::Text(tenant)});
    if (!inserted.ok() && Violated(c, kUniqueViolation)) {
      return absl::AlreadyExistsError(absl::StrCat("session ", s.id, " exists"));
    }
    // The character was deleted between the check and the insert.
    if (!inserted.ok() && Violated(c, kForeignKeyViolation)) {
      return absl::NotFoundError(absl::StrCat("character ", s.character_id, " not found"));
    }
    TROUPE_RETURN_IF_ERROR(inserted.status());
    if (inserted->affected() == 0) return absl::NotFoundError(absl::StrCat("character ", s.character_id, " not found"));
    return absl::OkStatus();
  });
}

absl::StatusOr<SessionRecord> PostgresStore::GetSession(const std::string& tenant, const std::string& id) {
  SessionRecord out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("get session", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows rows, c.Exec("get session",
                                                absl::StrCat(kSessionColumns, "WHERE id = $1 AND tenant = $2").c_str(),
                                                {PgParam::Text(id), PgParam::Text(tenant)}));
    if (rows.size() == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
    out = ReadSession(rows, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<SessionRecord>> PostgresStore::ListSessions(const std::string& tenant,
                                                                       const std::string& character_id,
                                                                       const PageRequest& page) {
  std::vector<SessionRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list sessions", false, [&](PgConnection& c, bool) -> absl::Status {
    const std::string sql = absl::StrCat(
        kSessionColumns, character_id.empty() ? "WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3"
                                              : "WHERE tenant = $1 AND id > $2 AND character_id = $4 "
                                                "ORDER BY id LIMIT $3");
    std::vector<PgParam> params = {PgParam::Text(tenant), PgParam::Text(page.after_id),
                                   PgParam::Int(ClampLimit(page.limit))};
    if (!character_id.empty()) params.push_back(PgParam::Text(character_id));
    TROUPE_ASSIGN_OR_RETURN(PgRows rows, c.Exec("list sessions", sql.c_str(), params));
    out.clear();
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadSession(rows, i));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<SessionRecord>> PostgresStore::ListSessionsOfAllTenants(const PageRequest& page) {
  std::vector<SessionRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list sessions", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        PgRows rows, c.Exec("list sessions", absl::StrCat(kSessionColumns, "WHERE id > $1 ORDER BY id LIMIT $2").c_str(),
                            {PgParam::Text(page.after_id), PgParam::Int(ClampLimit(page.limit))}));
    out.clear();
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadSession(rows, i));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresStore::UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                               const std::string& setup_json) {
  return pool_->Run("update session setup", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows done, c.Exec("update session setup",
                                                "UPDATE sessions SET setup_json = $1, version = version + 1 "
                                                "WHERE id = $2 AND tenant = $3",
                                                {PgParam::Text(setup_json), PgParam::Text(id), PgParam::Text(tenant)}));
    if (done.affected() == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
    return absl::OkStatus();
  });
}

absl::Status PostgresStore::DeleteSession(const std::string& tenant, const std::string& id) {
  return pool_->Run("delete session", true, [&](PgConnection& c, bool may_have_committed) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows done, c.Exec("delete session",  // turns cascade
                                                "DELETE FROM sessions WHERE id = $1 AND tenant = $2",
                                                {PgParam::Text(id), PgParam::Text(tenant)}));
    if (done.affected() == 0) {
      return may_have_committed ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("session ", id, " not found"));
    }
    return c.Run("delete session memories", "DELETE FROM memories WHERE session_id = $1 AND scope = $2 AND tenant = $3",
                 {PgParam::Text(id), PgParam::Int(static_cast<int64_t>(MemoryScope::kSession)), PgParam::Text(tenant)});
  });
}

absl::Status PostgresStore::AppendTurn(const std::string& tenant, const TurnRecord& t) {
  return pool_->Run("append turn", true, [&](PgConnection& c, bool may_have_committed) -> absl::Status {
    // The row lock orders concurrent appends of one session, whichever replica makes them.
    TROUPE_ASSIGN_OR_RETURN(PgRows owned, c.Exec("append turn",
                                                 "SELECT 1 FROM sessions WHERE id = $1 AND tenant = $2 FOR UPDATE",
                                                 {PgParam::Text(t.session_id), PgParam::Text(tenant)}));
    if (owned.size() == 0) return absl::NotFoundError(absl::StrCat("session ", t.session_id, " not found"));
    TROUPE_ASSIGN_OR_RETURN(PgRows next, c.Exec("append turn",
                                                "SELECT COALESCE(MAX(turn_index) + 1, 0) FROM turns WHERE session_id = $1",
                                                {PgParam::Text(t.session_id)}));
    const int64_t at = next.Int(0, 0);
    if (at != t.turn_index) {
      if (may_have_committed && at == t.turn_index + 1) {  // the first try's COMMIT went through?
        TROUPE_ASSIGN_OR_RETURN(PgRows same, c.Exec("append turn",
                                                    "SELECT 1 FROM turns WHERE session_id = $1 AND turn_index = $2 "
                                                    "AND user_text = $3 AND reply_text = $4 AND time_ms = $5",
                                                    {PgParam::Text(t.session_id), PgParam::Int(t.turn_index),
                                                     PgParam::Text(t.user_text), PgParam::Text(t.reply_text),
                                                     PgParam::Int(t.time_ms)}));
        if (same.size() == 1) return absl::OkStatus();
      }
      return absl::AbortedError(
          absl::StrCat("session ", t.session_id, " is at turn ", at, ", not ", t.turn_index));
    }
    TROUPE_RETURN_IF_ERROR(
        c.Run("append turn",
              "INSERT INTO turns (session_id, turn_index, user_text, context_text, reply_text, time_ms) "
              "VALUES ($1, $2, $3, $4, $5, $6)",
              {PgParam::Text(t.session_id), PgParam::Int(t.turn_index), PgParam::Text(t.user_text),
               PgParam::Text(t.context_text), PgParam::Text(t.reply_text), PgParam::Int(t.time_ms)}));
    return c.Run("append turn",
                 "UPDATE sessions SET version = version + 1, setup_json = COALESCE($2, setup_json) WHERE id = $1",
                 {PgParam::Text(t.session_id), t.setup_json ? PgParam::Text(*t.setup_json) : PgParam::Null()});
  });
}

absl::Status PostgresStore::UpdateSessionMood(const std::string& tenant, const std::string& id,
                                              const std::array<float, 8>& mood) {
  return pool_->Run("update session mood", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows done, c.Exec("update session mood",
                                                "UPDATE sessions SET mood = $1 WHERE id = $2 AND tenant = $3",
                                                {PgParam::Floats(mood.data(), mood.size()), PgParam::Text(id),
                                                 PgParam::Text(tenant)}));
    if (done.affected() == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
    return absl::OkStatus();
  });
}

absl::Status PostgresStore::UpdateMemoryRating(const std::string& tenant, int64_t id,
                                               const std::array<float, 8>& emotion, float importance) {
  return pool_->Run("rate memory", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        PgRows done, c.Exec("rate memory",
                            "UPDATE memories SET emotion = $1, importance = $2, rated = TRUE "
                            "WHERE id = $3 AND tenant = $4 AND NOT rated",
                            {PgParam::Floats(emotion.data(), emotion.size()), PgParam::Real(importance),
                             PgParam::Int(id), PgParam::Text(tenant)}));
    if (done.affected() == 0) return absl::NotFoundError(absl::StrCat("memory ", id, " not found, or rated already"));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<TurnRecord>> PostgresStore::ListTurns(const std::string& tenant,
                                                                 const std::string& session_id) {
  std::vector<TurnRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list turns", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        PgRows rows, c.Exec("list turns",
                            "SELECT t.session_id, t.turn_index, t.user_text, t.context_text, t.reply_text, t.time_ms "
                            "FROM turns t JOIN sessions s ON s.id = t.session_id "
                            "WHERE t.session_id = $1 AND s.tenant = $2 ORDER BY t.turn_index",
                            {PgParam::Text(session_id), PgParam::Text(tenant)}));
    out.clear();
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back({.session_id = rows.Text(i, 0), .turn_index = static_cast<int>(rows.Int(i, 1)),
                     .user_text = rows.Text(i, 2), .context_text = rows.Text(i, 3), .reply_text = rows.Text(i, 4),
                     .time_ms = rows.Int(i, 5), .setup_json = std::nullopt});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<int64_t> PostgresStore::AddMemory(const std::string& tenant, const MemoryRecord& m) {
  int64_t id = 0;
  TROUPE_RETURN_IF_ERROR(pool_->Run("add memory", true, [&](PgConnection& c, bool may_have_committed) -> absl::Status {
    if (may_have_committed) {  // the first try's COMMIT may have gone through: find our row
      TROUPE_ASSIGN_OR_RETURN(PgRows same, c.Exec("add memory",
                                                  "SELECT id FROM memories WHERE tenant = $1 AND session_id = $2 AND "
                                                  "turn_index = $3 AND scope = $4 AND character_id = $5 AND "
                                                  "wall_time_ms = $6 AND text = $7 ORDER BY id LIMIT 1",
                                                  {PgParam::Text(tenant), PgParam::Text(m.session_id),
                                                   PgParam::Int(m.turn_index), PgParam::Int(static_cast<int64_t>(m.scope)),
                                                   PgParam::Text(m.character_id), PgParam::Int(m.wall_time_ms),
                                                   PgParam::Text(m.text)}));
      if (same.size() == 1) {
        id = same.Int(0, 0);
        return absl::OkStatus();
      }
    }
    TROUPE_ASSIGN_OR_RETURN(std::optional<int64_t> inserted, InsertMemory(c, tenant, m));
    if (!inserted) {
      return absl::AlreadyExistsError(absl::StrCat("session ", m.session_id, " turn ", m.turn_index,
                                                   " already has a memory of this scope"));
    }
    id = *inserted;
    return absl::OkStatus();
  }));
  return id;
}

absl::Status PostgresStore::ReplaceCharacterMemories(const std::string& tenant, const std::string& character_id,
                                                     const std::vector<MemoryRecord>& memories) {
  return pool_->Run("replace character memories", true, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(PgRows owned, c.Exec("replace character memories",
                                                 "SELECT 1 FROM characters WHERE id = $1 AND tenant = $2",
                                                 {PgParam::Text(character_id), PgParam::Text(tenant)}));
    if (owned.size() == 0) return absl::NotFoundError(absl::StrCat("character ", character_id, " not found"));
    TROUPE_RETURN_IF_ERROR(c.Run("replace character memories",
                                 "DELETE FROM memories WHERE tenant = $1 AND character_id = $2 AND scope = $3",
                                 {PgParam::Text(tenant), PgParam::Text(character_id),
                                  PgParam::Int(static_cast<int64_t>(MemoryScope::kCharacter))}));
    for (MemoryRecord m : memories) {
      m.scope = MemoryScope::kCharacter;
      m.character_id = character_id;
      TROUPE_RETURN_IF_ERROR(InsertMemory(c, tenant, m).status());  // experiences: turn_index -1
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<MemoryRecord>> PostgresStore::ListCharacterMemories(const std::string& tenant,
                                                                               const std::string& character_id) {
  std::vector<MemoryRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list character memories", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        out, ReadMemories(c.Exec("list character memories",
                                 absl::StrCat(kMemoryColumns, "WHERE tenant = $1 AND character_id = $2 AND scope = $3 "
                                                              "ORDER BY id")
                                     .c_str(),
                                 {PgParam::Text(tenant), PgParam::Text(character_id),
                                  PgParam::Int(static_cast<int64_t>(MemoryScope::kCharacter))})));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<MemoryRecord>> PostgresStore::ListMemories() {
  std::vector<MemoryRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list memories", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        out, ReadMemories(c.Exec("list memories", absl::StrCat(kMemoryColumns, "ORDER BY id").c_str())));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<MemoryRecord>> PostgresStore::ListMemoriesAfter(int64_t after_id, int limit) {
  std::vector<MemoryRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list new memories", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        out, ReadMemories(c.Exec("list new memories", absl::StrCat(kMemoryColumns, "WHERE id > $1 ORDER BY id LIMIT $2").c_str(),
                                 {PgParam::Int(after_id), PgParam::Int(ClampLimit(limit))})));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<MemoryRecord>> PostgresStore::ListSessionMemories(const std::string& tenant,
                                                                             const std::string& session_id) {
  std::vector<MemoryRecord> out;
  TROUPE_RETURN_IF_ERROR(pool_->Run("list session memories", false, [&](PgConnection& c, bool) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(
        out, ReadMemories(c.Exec("list session memories",
                                 absl::StrCat(kMemoryColumns, "WHERE session_id = $1 AND tenant = $2 ORDER BY id").c_str(),
                                 {PgParam::Text(session_id), PgParam::Text(tenant)})));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace troupe
