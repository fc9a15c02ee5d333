#include "engine/store/sqlite_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

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

CharacterRecord Character(const std::string& id) {
  return {.id = id, .card_json = R"({"spec":"chara_card_v3","data":{"name":")" + id + R"("}})",
          .create_time_ms = 1000, .update_time_ms = 1000};
}

SessionRecord SessionOf(const std::string& id, const std::string& character_id) {
  return {.id = id, .character_id = character_id, .user_id = "u1", .setup_json = "{}",
          .mood = {5, 5, 1, 1, 1, 1, 1, 5}, .create_time_ms = 2000};
}

TurnRecord Turn(const std::string& session_id, int index, const std::string& user = "u",
                const std::string& reply = "r", int64_t time_ms = 0) {
  TurnRecord t;
  t.session_id = session_id;
  t.turn_index = index;
  t.user_text = user;
  t.context_text = "ctx " + user;
  t.reply_text = reply;
  t.time_ms = time_ms;
  return t;
}

MemoryRecord Memory(MemoryScope scope, const std::string& session_id, int turn) {
  return {.scope = scope, .character_id = "c1", .user_id = "u1", .session_id = session_id,
          .turn_index = turn, .text = "user: hi\nchar: hello " + std::to_string(turn),
          .embedding = {0.6f, 0.8f, 0.0f}, .emotion = {9, 2, 1, 3, 1, 1, 1, 4},
          .importance = 7, .wall_time_ms = 3000 + turn, .story_time = std::nullopt};
}

TEST_F(SqliteStoreTest, CharactersPutGetListDelete) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(Character("b")).ok());
  ASSERT_TRUE(store->PutCharacter(Character("a")).ok());
  ASSERT_TRUE(store->PutCharacter(Character("c")).ok());
  CharacterRecord updated = Character("b");
  updated.card_json = "{}";
  updated.create_time_ms = 5;  // ignored on update: the first create time stays
  updated.update_time_ms = 9000;
  ASSERT_TRUE(store->PutCharacter(updated).ok());
  auto b = store->GetCharacter("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->card_json, "{}");
  EXPECT_EQ(b->create_time_ms, 1000);
  EXPECT_EQ(b->update_time_ms, 9000);

  auto page1 = store->ListCharacters({.after_id = "", .limit = 2});
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, "a");
  EXPECT_EQ((*page1)[1].id, "b");
  auto page2 = store->ListCharacters({.after_id = "b", .limit = 2});
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->size(), 1u);
  EXPECT_EQ((*page2)[0].id, "c");

  EXPECT_TRUE(store->DeleteCharacter("a").ok());
  EXPECT_EQ(store->GetCharacter("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteCharacter("a").code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, CharacterInUseCannotBeDeleted) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->DeleteCharacter("c1").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->DeleteSession("s1").ok());
  EXPECT_TRUE(store->DeleteCharacter("c1").ok());
}

TEST_F(SqliteStoreTest, SessionsNeedTheirCharacterAndUniqueIds) {
  auto store = OpenStore();
  EXPECT_EQ(store->CreateSession(SessionOf("s1", "nobody")).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
  ASSERT_TRUE(store->PutCharacter(Character("c2")).ok());
  ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->CreateSession(SessionOf("s1", "c2")).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->CreateSession(SessionOf("s2", "c2")).ok());
  ASSERT_TRUE(store->CreateSession(SessionOf("s3", "c1")).ok());

  auto of_c1 = store->ListSessions("c1", {});
  ASSERT_TRUE(of_c1.ok());
  ASSERT_EQ(of_c1->size(), 2u);
  EXPECT_EQ((*of_c1)[0].id, "s1");
  EXPECT_EQ((*of_c1)[1].id, "s3");
  auto all = store->ListSessions("", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);

  ASSERT_TRUE(store->UpdateSessionSetup("s2", R"({"scenario":"a storm"})").ok());
  auto s2 = store->GetSession("s2");
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->setup_json, R"({"scenario":"a storm"})");
  EXPECT_EQ(s2->mood, (std::array<float, 8>{5, 5, 1, 1, 1, 1, 1, 5}));
  EXPECT_EQ(store->UpdateSessionSetup("nope", "{}").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetSession("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, TurnsAppendInOrderAndMoodUpdates) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
  const std::array<float, 8> mood{8, 6, 1, 2, 1, 1, 1, 6};
  ASSERT_TRUE(store->AppendTurn(Turn("s1", 0, "hi", "hello", 10))
                  .ok());
  // A gap or a repeat is refused, and so is an unknown session.
  EXPECT_EQ(store->AppendTurn(Turn("s1", 2)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->AppendTurn(Turn("s1", 0)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->AppendTurn(Turn("zz", 0)).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->AppendTurn(Turn("s1", 1, "and?", "and so on", 20))
                  .ok());
  auto turns = store->ListTurns("s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 2u);
  EXPECT_EQ((*turns)[0].reply_text, "hello");
  EXPECT_EQ((*turns)[1].user_text, "and?");
  EXPECT_EQ((*turns)[1].time_ms, 20);
  EXPECT_EQ((*turns)[1].context_text, "ctx and?");
  ASSERT_TRUE(store->UpdateSessionMood("s1", mood).ok());
  EXPECT_EQ(store->GetSession("s1")->mood, mood);
  EXPECT_EQ(store->UpdateSessionMood("zz", mood).code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, DeletingASessionKeepsWiderScopedMemories) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
  ASSERT_TRUE(store->AppendTurn(Turn("s1", 0)).ok());
  auto m1 = store->AddMemory(Memory(MemoryScope::kSession, "s1", 0));
  auto m2 = store->AddMemory(Memory(MemoryScope::kUserCharacter, "s1", 0));
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_LT(*m1, *m2);
  ASSERT_TRUE(store->DeleteSession("s1").ok());
  EXPECT_TRUE(store->ListTurns("s1")->empty());
  auto left = store->ListMemories();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, *m2);
  EXPECT_EQ((*left)[0].scope, MemoryScope::kUserCharacter);
  EXPECT_EQ(store->DeleteSession("s1").code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, MemoriesRoundTripEveryField) {
  auto store = OpenStore();
  MemoryRecord timed = Memory(MemoryScope::kSession, "s9", 3);
  timed.story_time = 1204;
  MemoryRecord timeless = Memory(MemoryScope::kCharacter, "", -1);
  timeless.embedding = {};
  ASSERT_TRUE(store->AddMemory(timed).ok());
  ASSERT_TRUE(store->AddMemory(timeless).ok());
  auto all = store->ListMemories();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  const MemoryRecord& a = (*all)[0];
  EXPECT_EQ(a.scope, MemoryScope::kSession);
  EXPECT_EQ(a.session_id, "s9");
  EXPECT_EQ(a.turn_index, 3);
  EXPECT_EQ(a.text, timed.text);
  EXPECT_EQ(a.embedding, timed.embedding);
  EXPECT_EQ(a.emotion, timed.emotion);
  EXPECT_FLOAT_EQ(a.importance, 7);
  EXPECT_EQ(a.wall_time_ms, timed.wall_time_ms);
  EXPECT_EQ(a.story_time, std::optional<int64_t>(1204));
  EXPECT_FALSE((*all)[1].story_time.has_value());
  EXPECT_TRUE((*all)[1].embedding.empty());
  auto of_s9 = store->ListSessionMemories("s9");
  ASSERT_TRUE(of_s9.ok());
  EXPECT_EQ(of_s9->size(), 1u);
}

TEST_F(SqliteStoreTest, EverythingSurvivesReopening) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
    ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
    ASSERT_TRUE(store->AppendTurn(Turn("s1", 0)).ok());
    ASSERT_TRUE(store->AddMemory(Memory(MemoryScope::kSession, "s1", 0)).ok());
  }
  auto store = OpenStore();
  EXPECT_TRUE(store->GetCharacter("c1").ok());
  EXPECT_TRUE(store->GetSession("s1").ok());
  EXPECT_EQ(store->ListTurns("s1")->size(), 1u);
  EXPECT_EQ(store->ListMemories()->size(), 1u);
}

// A turn acknowledged (AppendTurn returned OK) survives the process being killed right after.
TEST_F(SqliteStoreTest, AcknowledgedTurnSurvivesKill9) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->PutCharacter(Character("c1")).ok());
    ASSERT_TRUE(store->CreateSession(SessionOf("s1", "c1")).ok());
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteStore::Open(path_);
    if (!store.ok()) _exit(2);
    for (int i = 0; i < 5; ++i) {
      if (!(*store)->AppendTurn(Turn("s1", i, "u", "acked " + std::to_string(i)))
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
  auto turns = store->ListTurns("s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 5u);
  EXPECT_EQ((*turns)[4].reply_text, "acked 4");
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
      ASSERT_TRUE(store->PutCharacter(c).ok());
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
    put = (*store)->PutCharacter(c);
  }
  EXPECT_EQ(put.code(), absl::StatusCode::kResourceExhausted) << put;
  EXPECT_NE(put.message().find("full"), std::string::npos) << put;
  EXPECT_NE(put.message().find("troupe.db"), std::string::npos) << put;
  // What was written is still there, and the store still answers.
  EXPECT_TRUE((*store)->GetCharacter("c0").ok());
  EXPECT_EQ((*store)->AppendTurn(Turn("nope", 0)).code(), absl::StatusCode::kNotFound);
}

// Another process holding the write lock past the busy timeout: kUnavailable (retry), and
// readers are not blocked (WAL).
TEST_F(SqliteStoreTest, LockedDatabaseIsUnavailable) {
  auto store = SqliteStore::Open(path_, {.busy_timeout = absl::Milliseconds(20)});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutCharacter(Character("a")).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE; INSERT INTO characters VALUES ('z', '{}', 1, 1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(other);
  const absl::Status put = (*store)->PutCharacter(Character("b"));
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_NE(put.message().find("locked"), std::string::npos) << put;
  EXPECT_EQ((*store)->CreateSession(SessionOf("s1", "a")).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE((*store)->GetCharacter("a").ok());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE((*store)->PutCharacter(Character("b")).ok());
  EXPECT_TRUE((*store)->GetCharacter("z").ok());
}

}  // namespace
}  // namespace troupe
