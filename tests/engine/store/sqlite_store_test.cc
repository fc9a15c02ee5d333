#include "engine/store/sqlite_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/testing/store_records.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Character;
using testing::kTenant;
using testing::Memory;
using testing::SessionOf;
using testing::Turn;

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStore> OpenStore() {
    auto store = SqliteStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  testing::ScopedTempDir dir_{"store_test"};  // removed after the test
  std::string path_ = dir_.File("troupe.db");
};

TEST_F(SqliteStoreTest, AcknowledgedTurnSurvivesKill9) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
    ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteStore::Open(path_);
    if (!store.ok()) _exit(2);
    for (int i = 0; i < 5; ++i) {
      if (!(*store)->AppendTurn(kTenant, Turn("s1", i, "u", "acked " + std::to_string(i)))
               .ok()) {
        _exit(3);
      }
    }
    raise(SIGKILL);  // no destructor, no checkpoint, no close
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto store = OpenStore();
  auto turns = store->ListTurns(kTenant, "s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 5u);
  EXPECT_EQ((*turns)[4].reply_text, "acked 4");
}


// Per-tenant lookups and listings are served by indexes, not by scanning every tenant's rows.
TEST_F(SqliteStoreTest, PerTenantQueriesUseIndexes) {
  { auto store = OpenStore(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto plan = [db](const char* sql) {
    std::string out;
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, (std::string("EXPLAIN QUERY PLAN ") + sql).c_str(), -1, &q, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    while (sqlite3_step(q) == SQLITE_ROW) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(q, 3));
      out += "\n";
    }
    sqlite3_finalize(q);
    return out;
  };
  for (const char* sql : {
           "SELECT id FROM characters WHERE tenant = 'a' AND id > '' ORDER BY id LIMIT 10",
           "SELECT id FROM sessions WHERE tenant = 'a' AND id > '' ORDER BY id LIMIT 10",
           "SELECT id FROM sessions WHERE tenant = 'a' AND character_id = 'c' AND id > '' ORDER BY id",
           "SELECT id FROM memories WHERE tenant = 'a' AND character_id = 'c' AND scope = 2 ORDER BY id",
       }) {
    const std::string p = plan(sql);
    EXPECT_NE(p.find("USING"), std::string::npos) << sql << "\n" << p;
    EXPECT_EQ(p.find("SCAN"), std::string::npos) << sql << "\n" << p;
    EXPECT_EQ(p.find("TEMP B-TREE"), std::string::npos) << sql << "\n" << p;
  }
  sqlite3_close(db);
}

// A database written by schema version 1 (before tenants), made here with that version's own
// SQL, opens under the latest version: its rows belong to the anonymous tenant "", every record reads
// back unchanged, and new tenants' records live beside them.
TEST_F(SqliteStoreTest, MigratesAVersion1DatabaseToTheAnonymousTenant) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* v1 = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE characters (id TEXT PRIMARY KEY, card_json TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL, update_time_ms INTEGER NOT NULL);
CREATE TABLE sessions (id TEXT PRIMARY KEY, character_id TEXT NOT NULL REFERENCES characters(id),
  user_id TEXT NOT NULL, setup_json TEXT NOT NULL, mood BLOB NOT NULL, create_time_ms INTEGER NOT NULL);
CREATE INDEX sessions_by_character ON sessions(character_id, id);
CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  turn_index INTEGER NOT NULL, user_text TEXT NOT NULL, context_text TEXT NOT NULL,
  reply_text TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (session_id, turn_index));
CREATE TABLE memories (id INTEGER PRIMARY KEY AUTOINCREMENT, scope INTEGER NOT NULL,
  character_id TEXT NOT NULL, user_id TEXT NOT NULL, session_id TEXT NOT NULL,
  turn_index INTEGER NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL, emotion BLOB NOT NULL,
  importance REAL NOT NULL, wall_time_ms INTEGER NOT NULL, story_time INTEGER);
CREATE INDEX memories_by_session ON memories(session_id, id);
PRAGMA user_version=1;
INSERT INTO characters VALUES ('c1', '{"spec":"chara_card_v3","data":{"name":"Old"}}', 100, 200);
INSERT INTO sessions VALUES ('s1', 'c1', 'u1', '{"scenario":"old"}', x'0000a040', 300);
INSERT INTO turns VALUES ('s1', 0, 'hello', '', 'hi there', 400);
INSERT INTO memories (scope, character_id, user_id, session_id, turn_index, text, embedding,
  emotion, importance, wall_time_ms, story_time)
  VALUES (1, 'c1', 'u1', 's1', 0, 'u: hello', x'0000803f', x'00000040', 6, 500, 12);
)sql";
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_close(db);
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto character = store->GetCharacter("", "c1");
  ASSERT_TRUE(character.ok()) << character.status();
  EXPECT_EQ(character->card_json, R"({"spec":"chara_card_v3","data":{"name":"Old"}})");
  EXPECT_EQ(character->update_time_ms, 200);
  auto session = store->GetSession("", "s1");
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->tenant, "");
  EXPECT_EQ(session->user_id, "u1");
  EXPECT_EQ(session->setup_json, R"({"scenario":"old"})");
  EXPECT_FLOAT_EQ(session->mood[0], 5.0f);
  auto turns = store->ListTurns("", "s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 1u);
  EXPECT_EQ((*turns)[0].reply_text, "hi there");
  auto memories = store->ListMemories();
  ASSERT_TRUE(memories.ok());
  ASSERT_EQ(memories->size(), 1u);
  EXPECT_EQ((*memories)[0].tenant, "");
  EXPECT_EQ((*memories)[0].scope, MemoryScope::kUserCharacter);
  EXPECT_EQ((*memories)[0].story_time, std::optional<int64_t>(12));
  EXPECT_EQ(store->ListCharacters("", {})->size(), 1u);
  // The old rows are the anonymous tenant's only.
  EXPECT_EQ(store->GetCharacter("acme", "c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->ListSessions("acme", "", {})->empty());
  // Written on: a new turn of the old session, a new tenant's character.
  ASSERT_TRUE(store->AppendTurn("", Turn("s1", 1)).ok());
  ASSERT_TRUE(store->PutCharacter("acme", Character("c2")).ok());
  EXPECT_EQ(store->ListCharacters("acme", {})->size(), 1u);
  store.reset();

  // Migrated once: the version is now the latest (4), and reopening changes nothing.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 4);
  sqlite3_finalize(q);
  sqlite3_close(db);
  store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->ListTurns("", "s1")->size(), 2u);
}

// A database of a newer troupe is refused rather than misread.
TEST_F(SqliteStoreTest, RefusesANewerSchema) {
  { auto store = OpenStore(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  std::ofstream(path_) << "this is a text file, not SQLite, and it is long enough to have a header\n";
  auto store = SqliteStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(path_), std::string::npos) << store.status();
  auto missing_dir = SqliteStore::Open(dir_.File("no/such/dir.db"));
  EXPECT_EQ(missing_dir.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A database whose header is intact but whose pages were overwritten (a bad sector, a torn copy)
// opens as SQLite, so only the structure check at startup finds it.
TEST_F(SqliteStoreTest, DamagedPagesFailTheStartupCheckNamingTheFile) {
  {
    auto store = OpenStore();
    for (int i = 0; i < 300; ++i) {
      CharacterRecord c = Character("c" + std::to_string(1000 + i));
      c.card_json.append(1000, 'x');
      ASSERT_TRUE(store->PutCharacter("", c).ok());
    }
  }  // closed: the WAL is checkpointed into the file
  std::vector<uint8_t> bytes = testing::ReadFileBytes(path_);
  ASSERT_GT(bytes.size(), 40u * 4096);
  std::fill(bytes.begin() + 20 * 4096, bytes.begin() + 30 * 4096, 0xA5);  // pages 21..30
  std::ofstream(path_, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));

  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(path_), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("quick_check"), std::string::npos) << store.status();
}

// PRAGMA max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does.
TEST_F(SqliteStoreTest, FullDatabaseIsResourceExhaustedNamingTheFile) {
  auto store = SqliteStore::Open(path_, {.max_pages = 16});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Status put;
  for (int i = 0; i < 100 && put.ok(); ++i) {
    CharacterRecord c = Character("c" + std::to_string(i));
    c.card_json.append(4000, 'x');
    put = (*store)->PutCharacter("", c);
  }
  EXPECT_EQ(put.code(), absl::StatusCode::kResourceExhausted) << put;
  EXPECT_NE(put.message().find("full"), std::string::npos) << put;
  EXPECT_NE(put.message().find("troupe.db"), std::string::npos) << put;
  // What was written is still there, and the store still answers.
  EXPECT_TRUE((*store)->GetCharacter("", "c0").ok());
  EXPECT_EQ((*store)->AppendTurn("", Turn("nope", 0)).code(), absl::StatusCode::kNotFound);
}

// Another process holding the write lock past the busy timeout: kUnavailable (retry), and
// readers are not blocked (WAL).
TEST_F(SqliteStoreTest, LockedDatabaseIsUnavailable) {
  auto store = SqliteStore::Open(path_, {.busy_timeout = absl::Milliseconds(20)});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutCharacter("", Character("a")).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE; INSERT INTO characters VALUES ('z', '{}', 1, 1, '');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(other);
  const absl::Status put = (*store)->PutCharacter("", Character("b"));
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_NE(put.message().find("locked"), std::string::npos) << put;
  EXPECT_EQ((*store)->CreateSession("", SessionOf("s1", "a")).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE((*store)->GetCharacter("", "a").ok());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE((*store)->PutCharacter("", Character("b")).ok());
  EXPECT_TRUE((*store)->GetCharacter("", "z").ok());
}

}  // namespace
}  // namespace troupe
