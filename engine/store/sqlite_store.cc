#include "engine/store/sqlite_store.h"

#include <sqlite3.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/store/sqlite_status.h"

namespace troupe {
namespace {

// The schema is built by applying kMigrations in order: migration i takes a database from
// user_version i to i + 1, each in one transaction with its version bump. A new database runs
// them all, so a new and a migrated database are the same. Never edit a shipped migration;
// append one.
//
// Version 1: characters, sessions, turns, memories.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS characters (
  id TEXT PRIMARY KEY,
  card_json TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  character_id TEXT NOT NULL REFERENCES characters(id),
  user_id TEXT NOT NULL,
  setup_json TEXT NOT NULL,
  mood BLOB NOT NULL,
  create_time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_character ON sessions(character_id, id);
CREATE TABLE IF NOT EXISTS turns (
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  turn_index INTEGER NOT NULL,
  user_text TEXT NOT NULL,
  context_text TEXT NOT NULL,
  reply_text TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (session_id, turn_index)
);
CREATE TABLE IF NOT EXISTS memories (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  scope INTEGER NOT NULL,
  character_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  turn_index INTEGER NOT NULL,
  text TEXT NOT NULL,
  embedding BLOB NOT NULL,
  emotion BLOB NOT NULL,
  importance REAL NOT NULL,
  wall_time_ms INTEGER NOT NULL,
  story_time INTEGER
);
CREATE INDEX IF NOT EXISTS memories_by_session ON memories(session_id, id);
)sql";

// Version 2: every character, session and memory belongs to a tenant; the rows of a version 1
// database belong to the anonymous tenant "". Turns belong to their session's tenant. Lookups
// are by (tenant, id); the indexes serve per-tenant listing.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE characters ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE memories ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
CREATE INDEX characters_by_tenant ON characters(tenant, id);
DROP INDEX IF EXISTS sessions_by_character;
CREATE INDEX sessions_by_tenant ON sessions(tenant, id);
CREATE INDEX sessions_by_tenant_character ON sessions(tenant, character_id, id);
CREATE INDEX memories_by_tenant_character ON memories(tenant, character_id, scope, id);
)sql";

// Version 3: sessions carry a version, bumped by each turn and setup change (Store's
// SessionRecord::version).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 4: a memory is stored when its turn is acknowledged, with a provisional emotion, and
// rated later; rated = 0 until then (a start re-rates what a crash left unrated).
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE memories ADD COLUMN rated INTEGER NOT NULL DEFAULT 1;
)sql";

constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

absl::string_view PathOf(sqlite3* db) {
  const char* path = sqlite3_db_filename(db, "main");
  return path != nullptr ? path : "";
}

// The status of the last failed call on `db` (SqliteStatus maps the codes).
absl::Status SqliteError(sqlite3* db, const char* what) {
  return SqliteStatus(sqlite3_extended_errcode(db), sqlite3_errmsg(db), PathOf(db), what);
}

// One prepared statement; binds by 1-based index, reads columns by 0-based index.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status status() const {
    return stmt_ ? absl::OkStatus() : SqliteError(db_, "prepare");
  }
  void Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  void BindFloats(int i, const float* data, size_t n) {
    sqlite3_bind_blob(stmt_, i, data, static_cast<int>(n * sizeof(float)), SQLITE_TRANSIENT);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  absl::Status Run() {
    const int rc = Step();
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? absl::OkStatus() : SqliteError(db_, "step");
  }

  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col))
             : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::vector<float> Floats(int col) const {
    const int bytes = sqlite3_column_bytes(stmt_, col);
    std::vector<float> v(bytes / sizeof(float));
    if (!v.empty()) std::memcpy(v.data(), sqlite3_column_blob(stmt_, col), v.size() * sizeof(float));
    return v;
  }
  std::array<float, 8> Emotion(int col) const {
    std::array<float, 8> e{};
    const std::vector<float> v = Floats(col);
    for (size_t i = 0; i < e.size() && i < v.size(); ++i) e[i] = v[i];
    return e;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error); rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(sqlite3_extended_errcode(db), error ? error : sqlite3_errstr(rc),
                                       PathOf(db), sql);
    sqlite3_free(error);
    return status;
  }
  return absl::OkStatus();
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless Commit() succeeds.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db), status_(Exec(db, "BEGIN IMMEDIATE")) {}
  ~Transaction() {
    if (status_.ok() && !committed_) (void)Exec(db_, "ROLLBACK");
  }
  const absl::Status& status() const { return status_; }
  absl::Status Commit() {
    TROUPE_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  absl::Status status_;
  bool committed_ = false;
};

int ClampLimit(int limit) { return limit <= 0 || limit > 1000 ? 1000 : limit; }

SessionRecord ReadSession(const Statement& q) {
  SessionRecord s;
  s.tenant = q.Text(6);
  s.id = q.Text(0);
  s.character_id = q.Text(1);
  s.user_id = q.Text(2);
  s.setup_json = q.Text(3);
  s.mood = q.Emotion(4);
  s.create_time_ms = q.Int(5);
  s.version = q.Int(7);
  return s;
}

constexpr const char* kSessionColumns =
    "SELECT id, character_id, user_id, setup_json, mood, create_time_ms, tenant, version FROM sessions ";

MemoryRecord ReadMemory(const Statement& q) {
  MemoryRecord m;
  m.id = q.Int(0);
  m.scope = static_cast<MemoryScope>(q.Int(1));
  m.character_id = q.Text(2);
  m.user_id = q.Text(3);
  m.session_id = q.Text(4);
  m.turn_index = static_cast<int>(q.Int(5));
  m.text = q.Text(6);
  m.embedding = q.Floats(7);
  m.emotion = q.Emotion(8);
  m.importance = static_cast<float>(q.Double(9));
  m.wall_time_ms = q.Int(10);
  if (!q.IsNull(11)) m.story_time = q.Int(11);
  m.tenant = q.Text(12);
  m.rated = q.Int(13) != 0;
  return m;
}

constexpr const char* kMemoryColumns =
    "SELECT id, scope, character_id, user_id, session_id, turn_index, text, embedding, emotion, "
    "importance, wall_time_ms, story_time, tenant, rated FROM memories ";

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                              const SqliteStoreOptions& options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  std::unique_ptr<SqliteStore> store(db ? new SqliteStore(db) : nullptr);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open database ", path, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  if (absl::Status ready = Prepare(db, path, options); !ready.ok()) {
    if (absl::IsDataLoss(ready)) {  // a damaged file: the server must not start on it
      return absl::FailedPreconditionError(absl::StrCat(
          ready.message(), "; troupe will not start on it: restore ", path,
          " from a backup, or move it away to start with an empty database"));
    }
    return ready;
  }
  return store;
}

absl::Status SqliteStore::Prepare(sqlite3* db, const std::string& path, const SqliteStoreOptions& options) {
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  // journal_mode answers with the mode in force; a file that is not a database fails here.
  {
    Statement q(db, "PRAGMA journal_mode=WAL");
    if (!q.status().ok() || q.Step() != SQLITE_ROW || q.Text(0) != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot use ", path, " as a troupe database (WAL mode): ", sqlite3_errmsg(db)));
    }
  }
  TROUPE_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  if (options.max_pages > 0) {
    TROUPE_RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA max_page_count=", options.max_pages).c_str()));
  }
  // Every page's structure, at every start (not the index contents: that is integrity_check).
  {
    Statement check(db, "PRAGMA quick_check(8)");
    TROUPE_RETURN_IF_ERROR(check.status());
    std::vector<std::string> problems;
    int step;
    while ((step = check.Step()) == SQLITE_ROW) {
      if (check.Text(0) != "ok") problems.push_back(check.Text(0));
    }
    if (step != SQLITE_DONE) return SqliteError(db, "PRAGMA quick_check");
    if (!problems.empty()) {
      return absl::DataLossError(absl::StrCat("database ", path, " failed its integrity check (PRAGMA quick_check): ",
                                              absl::StrJoin(problems, "; ")));
    }
  }
  int64_t found = 0;
  {  // finalized before migrating: DROP and ALTER fail while a statement is pending
    Statement version(db, "PRAGMA user_version");
    TROUPE_RETURN_IF_ERROR(version.status());
    if (version.Step() != SQLITE_ROW) return SqliteError(db, "user_version");
    found = version.Int(0);
  }
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", found, "; this troupe reads up to ", kSchemaVersion));
  }
  for (int64_t v = found; v < kSchemaVersion; ++v) {
    Transaction txn(db);
    TROUPE_RETURN_IF_ERROR(txn.status());
    if (absl::Status migrated = Exec(db, kMigrations[v]); !migrated.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot migrate ", path, " from schema version ", v, " to ", v + 1, ": ", migrated.message()));
    }
    TROUPE_RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA user_version=", v + 1).c_str()));
    TROUPE_RETURN_IF_ERROR(txn.Commit());
  }
  return absl::OkStatus();
}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

absl::Status SqliteStore::PutCharacter(const std::string& tenant, const CharacterRecord& c) {
  absl::MutexLock lock(&mu_);
  // The upsert's WHERE leaves another tenant's row alone, and changes nothing.
  Statement q(db_,
              "INSERT INTO characters (id, card_json, create_time_ms, update_time_ms, tenant) "
              "VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET card_json = excluded.card_json, "
              "update_time_ms = excluded.update_time_ms WHERE characters.tenant = excluded.tenant");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, c.id);
  q.Bind(2, c.card_json);
  q.Bind(3, c.create_time_ms);
  q.Bind(4, c.update_time_ms);
  q.Bind(5, tenant);
  TROUPE_RETURN_IF_ERROR(q.Run());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("character ", c.id, " not found"));
  return absl::OkStatus();
}

absl::StatusOr<CharacterRecord> SqliteStore::GetCharacter(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  Statement q(db_,
              "SELECT id, card_json, create_time_ms, update_time_ms FROM characters WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  q.Bind(2, tenant);
  const int rc = q.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("character ", id, " not found"));
  if (rc != SQLITE_ROW) return SqliteError(db_, "get character");
  return CharacterRecord{.id = q.Text(0), .card_json = q.Text(1), .create_time_ms = q.Int(2),
                         .update_time_ms = q.Int(3)};
}

absl::StatusOr<std::vector<CharacterRecord>> SqliteStore::ListCharacters(const std::string& tenant,
                                                                         const PageRequest& page) {
  absl::MutexLock lock(&mu_);
  Statement q(db_,
              "SELECT id, card_json, create_time_ms, update_time_ms FROM characters "
              "WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, tenant);
  q.Bind(2, page.after_id);
  q.Bind(3, static_cast<int64_t>(ClampLimit(page.limit)));
  std::vector<CharacterRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    out.push_back({.id = q.Text(0), .card_json = q.Text(1), .create_time_ms = q.Int(2),
                   .update_time_ms = q.Int(3)});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list characters");
  return out;
}

absl::Status SqliteStore::DeleteCharacter(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  TROUPE_RETURN_IF_ERROR(txn.status());
  Statement owned(db_, "SELECT 1 FROM characters WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(owned.status());
  owned.Bind(1, id);
  owned.Bind(2, tenant);
  if (owned.Step() != SQLITE_ROW) return absl::NotFoundError(absl::StrCat("character ", id, " not found"));
  // A session of a character is always its tenant's (CreateSession checks).
  Statement used(db_, "SELECT COUNT(*) FROM sessions WHERE tenant = ? AND character_id = ?");
  TROUPE_RETURN_IF_ERROR(used.status());
  used.Bind(1, tenant);
  used.Bind(2, id);
  if (used.Step() != SQLITE_ROW) return SqliteError(db_, "count sessions");
  if (const int64_t n = used.Int(0); n > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "character ", id, " is used by ", n, " session(s); delete them first"));
  }
  Statement del(db_, "DELETE FROM characters WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(del.status());
  del.Bind(1, id);
  del.Bind(2, tenant);
  TROUPE_RETURN_IF_ERROR(del.Run());
  Statement mem(db_, "DELETE FROM memories WHERE tenant = ? AND character_id = ? AND scope = ?");
  TROUPE_RETURN_IF_ERROR(mem.status());
  mem.Bind(1, tenant);
  mem.Bind(2, id);
  mem.Bind(3, static_cast<int64_t>(MemoryScope::kCharacter));
  TROUPE_RETURN_IF_ERROR(mem.Run());
  return txn.Commit();
}

absl::Status SqliteStore::CreateSession(const std::string& tenant, const SessionRecord& s) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  TROUPE_RETURN_IF_ERROR(txn.status());
  Statement character(db_, "SELECT 1 FROM characters WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(character.status());
  character.Bind(1, s.character_id);
  character.Bind(2, tenant);
  if (character.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("character ", s.character_id, " not found"));
  }
  Statement q(db_,
              "INSERT INTO sessions (id, character_id, user_id, setup_json, mood, create_time_ms, tenant) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, s.id);
  q.Bind(2, s.character_id);
  q.Bind(3, s.user_id);
  q.Bind(4, s.setup_json);
  q.BindFloats(5, s.mood.data(), s.mood.size());
  q.Bind(6, s.create_time_ms);
  q.Bind(7, tenant);
  if (q.Step() != SQLITE_DONE) {
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return absl::AlreadyExistsError(absl::StrCat("session ", s.id, " exists"));
    }
    return SqliteError(db_, "create session");
  }
  return txn.Commit();
}

absl::StatusOr<SessionRecord> SqliteStore::GetSession(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat(kSessionColumns, "WHERE id = ? AND tenant = ?").c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  q.Bind(2, tenant);
  const int rc = q.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
  if (rc != SQLITE_ROW) return SqliteError(db_, "get session");
  return ReadSession(q);
}

absl::StatusOr<std::vector<SessionRecord>> SqliteStore::ListSessions(const std::string& tenant,
                                                                     const std::string& character_id,
                                                                     const PageRequest& page) {
  absl::MutexLock lock(&mu_);
  // Two statements rather than "(?3 = '' OR character_id = ?3)", which no index serves.
  Statement q(db_, absl::StrCat(kSessionColumns, character_id.empty()
                                                     ? "WHERE tenant = ?1 AND id > ?2 ORDER BY id LIMIT ?4"
                                                     : "WHERE tenant = ?1 AND character_id = ?3 AND id > ?2 "
                                                       "ORDER BY id LIMIT ?4")
                       .c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, tenant);
  q.Bind(2, page.after_id);
  if (!character_id.empty()) q.Bind(3, character_id);
  q.Bind(4, static_cast<int64_t>(ClampLimit(page.limit)));
  std::vector<SessionRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadSession(q));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list sessions");
  return out;
}

absl::StatusOr<std::vector<SessionRecord>> SqliteStore::ListSessionsOfAllTenants(const PageRequest& page) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat(kSessionColumns, "WHERE id > ? ORDER BY id LIMIT ?").c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, page.after_id);
  q.Bind(2, static_cast<int64_t>(ClampLimit(page.limit)));
  std::vector<SessionRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadSession(q));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list sessions");
  return out;
}

absl::Status SqliteStore::UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                             const std::string& setup_json) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "UPDATE sessions SET setup_json = ?, version = version + 1 WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, setup_json);
  q.Bind(2, id);
  q.Bind(3, tenant);
  TROUPE_RETURN_IF_ERROR(q.Run());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
  return absl::OkStatus();
}

absl::Status SqliteStore::DeleteSession(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  TROUPE_RETURN_IF_ERROR(txn.status());
  Statement del(db_, "DELETE FROM sessions WHERE id = ? AND tenant = ?");  // turns cascade
  TROUPE_RETURN_IF_ERROR(del.status());
  del.Bind(1, id);
  del.Bind(2, tenant);
  TROUPE_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
  Statement mem(db_, "DELETE FROM memories WHERE session_id = ? AND scope = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(mem.status());
  mem.Bind(1, id);
  mem.Bind(2, static_cast<int64_t>(MemoryScope::kSession));
  mem.Bind(3, tenant);
  TROUPE_RETURN_IF_ERROR(mem.Run());
  return txn.Commit();
}

absl::Status SqliteStore::AppendTurn(const std::string& tenant, const TurnRecord& t) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  TROUPE_RETURN_IF_ERROR(txn.status());
  Statement owned(db_, "SELECT 1 FROM sessions WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(owned.status());
  owned.Bind(1, t.session_id);
  owned.Bind(2, tenant);
  if (owned.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("session ", t.session_id, " not found"));
  }
  Statement next(db_, "SELECT COUNT(*) FROM turns WHERE session_id = ?");
  TROUPE_RETURN_IF_ERROR(next.status());
  next.Bind(1, t.session_id);
  if (next.Step() != SQLITE_ROW) return SqliteError(db_, "count turns");
  if (next.Int(0) != t.turn_index) {
    return absl::AbortedError(absl::StrCat(
        "session ", t.session_id, " is at turn ", next.Int(0), ", not ", t.turn_index));
  }
  Statement ins(db_,
                "INSERT INTO turns (session_id, turn_index, user_text, context_text, reply_text, time_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)");
  TROUPE_RETURN_IF_ERROR(ins.status());
  ins.Bind(1, t.session_id);
  ins.Bind(2, static_cast<int64_t>(t.turn_index));
  ins.Bind(3, t.user_text);
  ins.Bind(4, t.context_text);
  ins.Bind(5, t.reply_text);
  ins.Bind(6, t.time_ms);
  if (ins.Step() != SQLITE_DONE) {
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_FOREIGNKEY) {
      return absl::NotFoundError(absl::StrCat("session ", t.session_id, " not found"));
    }
    return SqliteError(db_, "append turn");
  }
  Statement bump(db_, "UPDATE sessions SET version = version + 1, setup_json = COALESCE(?, setup_json) WHERE id = ?");
  TROUPE_RETURN_IF_ERROR(bump.status());
  if (t.setup_json) {
    bump.Bind(1, *t.setup_json);
  } else {
    bump.BindNull(1);
  }
  bump.Bind(2, t.session_id);
  TROUPE_RETURN_IF_ERROR(bump.Run());
  return txn.Commit();
}

absl::Status SqliteStore::UpdateSessionMood(const std::string& tenant, const std::string& id,
                                            const std::array<float, 8>& mood) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "UPDATE sessions SET mood = ? WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.BindFloats(1, mood.data(), mood.size());
  q.Bind(2, id);
  q.Bind(3, tenant);
  TROUPE_RETURN_IF_ERROR(q.Run());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TurnRecord>> SqliteStore::ListTurns(const std::string& tenant,
                                                               const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  Statement q(db_,
              "SELECT t.session_id, t.turn_index, t.user_text, t.context_text, t.reply_text, t.time_ms "
              "FROM turns t JOIN sessions s ON s.id = t.session_id "
              "WHERE t.session_id = ? AND s.tenant = ? ORDER BY t.turn_index");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, session_id);
  q.Bind(2, tenant);
  std::vector<TurnRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    out.push_back({.session_id = q.Text(0), .turn_index = static_cast<int>(q.Int(1)),
                   .user_text = q.Text(2), .context_text = q.Text(3), .reply_text = q.Text(4),
                   .time_ms = q.Int(5), .setup_json = std::nullopt});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list turns");
  return out;
}

absl::StatusOr<int64_t> SqliteStore::AddMemory(const std::string& tenant, const MemoryRecord& m) {
  absl::MutexLock lock(&mu_);
  return InsertMemoryLocked(tenant, m);
}

absl::Status SqliteStore::ReplaceCharacterMemories(const std::string& tenant, const std::string& character_id,
                                                   const std::vector<MemoryRecord>& memories) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  TROUPE_RETURN_IF_ERROR(txn.status());
  Statement owned(db_, "SELECT 1 FROM characters WHERE id = ? AND tenant = ?");
  TROUPE_RETURN_IF_ERROR(owned.status());
  owned.Bind(1, character_id);
  owned.Bind(2, tenant);
  if (owned.Step() != SQLITE_ROW) return absl::NotFoundError(absl::StrCat("character ", character_id, " not found"));
  Statement del(db_, "DELETE FROM memories WHERE tenant = ? AND character_id = ? AND scope = ?");
  TROUPE_RETURN_IF_ERROR(del.status());
  del.Bind(1, tenant);
  del.Bind(2, character_id);
  del.Bind(3, static_cast<int64_t>(MemoryScope::kCharacter));
  TROUPE_RETURN_IF_ERROR(del.Run());
  for (MemoryRecord m : memories) {
    m.scope = MemoryScope::kCharacter;
    m.character_id = character_id;
    TROUPE_RETURN_IF_ERROR(InsertMemoryLocked(tenant, m).status());
  }
  return txn.Commit();
}

absl::StatusOr<std::vector<MemoryRecord>> SqliteStore::ListCharacterMemories(const std::string& tenant,
                                                                             const std::string& character_id) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat(kMemoryColumns,
                                "WHERE tenant = ? AND character_id = ? AND scope = ? ORDER BY id")
                       .c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, tenant);
  q.Bind(2, character_id);
  q.Bind(3, static_cast<int64_t>(MemoryScope::kCharacter));
  std::vector<MemoryRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadMemory(q));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list character memories");
  return out;
}

absl::StatusOr<int64_t> SqliteStore::InsertMemoryLocked(const std::string& tenant, const MemoryRecord& m) {
  Statement q(db_,
              "INSERT INTO memories (scope, character_id, user_id, session_id, turn_index, text, "
              "embedding, emotion, importance, wall_time_ms, story_time, tenant, rated) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(m.scope));
  q.Bind(2, m.character_id);
  q.Bind(3, m.user_id);
  q.Bind(4, m.session_id);
  q.Bind(5, static_cast<int64_t>(m.turn_index));
  q.Bind(6, m.text);
  q.BindFloats(7, m.embedding.data(), m.embedding.size());
  q.BindFloats(8, m.emotion.data(), m.emotion.size());
  q.Bind(9, static_cast<double>(m.importance));
  q.Bind(10, m.wall_time_ms);
  if (m.story_time) {
    q.Bind(11, *m.story_time);
  } else {
    q.BindNull(11);
  }
  q.Bind(12, tenant);
  q.Bind(13, static_cast<int64_t>(m.rated ? 1 : 0));
  TROUPE_RETURN_IF_ERROR(q.Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

absl::Status SqliteStore::UpdateMemoryRating(const std::string& tenant, int64_t id,
                                             const std::array<float, 8>& emotion, float importance) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "UPDATE memories SET emotion = ?, importance = ?, rated = 1 WHERE id = ? AND tenant = ? AND rated = 0");
  TROUPE_RETURN_IF_ERROR(q.status());
  q.BindFloats(1, emotion.data(), emotion.size());
  q.Bind(2, static_cast<double>(importance));
  q.Bind(3, id);
  q.Bind(4, tenant);
  TROUPE_RETURN_IF_ERROR(q.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("memory ", id, " not found, or rated already"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MemoryRecord>> SqliteStore::ListMemories() {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat(kMemoryColumns, "ORDER BY id").c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  std::vector<MemoryRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadMemory(q));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list memories");
  return out;
}

absl::StatusOr<std::vector<MemoryRecord>> SqliteStore::ListSessionMemories(const std::string& tenant,
                                                                           const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, absl::StrCat(kMemoryColumns, "WHERE session_id = ? AND tenant = ? ORDER BY id").c_str());
  TROUPE_RETURN_IF_ERROR(q.status());
  q.Bind(1, session_id);
  q.Bind(2, tenant);
  std::vector<MemoryRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadMemory(q));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list session memories");
  return out;
}

}  // namespace troupe
