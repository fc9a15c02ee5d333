// The Store contract (engine/store/store.h), run on every backend: SQLite (a file of the test's
// own) and PostgreSQL (a database of the test's own on the server ctest's fixture "postgres"
// starts, tests/testing/postgres_database.h). Each store is opened through OpenStore, as
// --database opens it. What only one backend has (SQLite's file checks and kill -9, PostgreSQL's
// retries and migrations) is tested in sqlite_store_test.cc and postgres_store_test.cc.
#include "engine/store/store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/open_store.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_database.h"
#include "tests/testing/store_records.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Character;
using testing::kTenant;
using testing::Memory;
using testing::SessionOf;
using testing::Turn;

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
#ifdef TROUPE_HAVE_POSTGRES
    if (GetParam() == "postgres") {
      database_ = std::make_unique<testing::PostgresDatabase>();
      ASSERT_TRUE(database_->ok());
    }
#endif
  }

  // The --database URL of this test's store.
  std::string Url() const {
#ifdef TROUPE_HAVE_POSTGRES
    if (database_) return database_->url();
#endif
    return "sqlite:" + dir_.File("troupe.db");
  }

  std::unique_ptr<Store> OpenStore() {
    absl::StatusOr<std::unique_ptr<Store>> store = troupe::OpenStore(Url());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  testing::ScopedTempDir dir_{"store_test"};
#ifdef TROUPE_HAVE_POSTGRES
  std::unique_ptr<testing::PostgresDatabase> database_;
#endif
};

TEST_P(StoreTest, CharactersPutGetListDelete) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("b")).ok());
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("a")).ok());
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c")).ok());
  CharacterRecord updated = Character("b");
  updated.card_json = "{}";
  updated.create_time_ms = 5;  // ignored on update: the first create time stays
  updated.update_time_ms = 9000;
  ASSERT_TRUE(store->PutCharacter(kTenant, updated).ok());
  auto b = store->GetCharacter(kTenant, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->card_json, "{}");
  EXPECT_EQ(b->create_time_ms, 1000);
  EXPECT_EQ(b->update_time_ms, 9000);

  auto page1 = store->ListCharacters(kTenant, {.after_id = "", .limit = 2});
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, "a");
  EXPECT_EQ((*page1)[1].id, "b");
  auto page2 = store->ListCharacters(kTenant, {.after_id = "b", .limit = 2});
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->size(), 1u);
  EXPECT_EQ((*page2)[0].id, "c");

  EXPECT_TRUE(store->DeleteCharacter(kTenant, "a").ok());
  EXPECT_EQ(store->GetCharacter(kTenant, "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteCharacter(kTenant, "a").code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, CharacterInUseCannotBeDeleted) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->DeleteCharacter(kTenant, "c1").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->DeleteSession(kTenant, "s1").ok());
  EXPECT_TRUE(store->DeleteCharacter(kTenant, "c1").ok());
}

TEST_P(StoreTest, SessionsNeedTheirCharacterAndUniqueIds) {
  auto store = OpenStore();
  EXPECT_EQ(store->CreateSession(kTenant, SessionOf("s1", "nobody")).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c2")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->CreateSession(kTenant, SessionOf("s1", "c2")).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s2", "c2")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s3", "c1")).ok());

  auto of_c1 = store->ListSessions(kTenant, "c1", {});
  ASSERT_TRUE(of_c1.ok());
  ASSERT_EQ(of_c1->size(), 2u);
  EXPECT_EQ((*of_c1)[0].id, "s1");
  EXPECT_EQ((*of_c1)[1].id, "s3");
  auto all = store->ListSessions(kTenant, "", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);

  ASSERT_TRUE(store->UpdateSessionSetup(kTenant, "s2", R"({"scenario":"a storm"})").ok());
  auto s2 = store->GetSession(kTenant, "s2");
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->setup_json, R"({"scenario":"a storm"})");
  EXPECT_EQ(s2->mood, (std::array<float, 8>{5, 5, 1, 1, 1, 1, 1, 5}));
  EXPECT_EQ(store->UpdateSessionSetup(kTenant, "nope", "{}").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetSession(kTenant, "nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, TurnsAppendInOrderAndMoodUpdates) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  const std::array<float, 8> mood{8, 6, 1, 2, 1, 1, 1, 6};
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0, "hi", "hello", 10))
                  .ok());
  // A gap or a repeat is refused (another writer may have appended: read again), and so is an
  // unknown session.
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s1", 2)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s1", 0)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("zz", 0)).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 1, "and?", "and so on", 20))
                  .ok());
  auto turns = store->ListTurns(kTenant, "s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 2u);
  EXPECT_EQ((*turns)[0].reply_text, "hello");
  EXPECT_EQ((*turns)[1].user_text, "and?");
  EXPECT_EQ((*turns)[1].time_ms, 20);
  EXPECT_EQ((*turns)[1].context_text, "ctx and?");
  ASSERT_TRUE(store->UpdateSessionMood(kTenant, "s1", mood).ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->mood, mood);
  EXPECT_EQ(store->UpdateSessionMood(kTenant, "zz", mood).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, DeletingASessionKeepsWiderScopedMemories) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0)).ok());
  auto m1 = store->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 0));
  auto m2 = store->AddMemory(kTenant, Memory(MemoryScope::kUserCharacter, "s1", 0));
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_LT(*m1, *m2);
  ASSERT_TRUE(store->DeleteSession(kTenant, "s1").ok());
  EXPECT_TRUE(store->ListTurns(kTenant, "s1")->empty());
  auto left = store->ListMemories();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, *m2);
  EXPECT_EQ((*left)[0].scope, MemoryScope::kUserCharacter);
  EXPECT_EQ(store->DeleteSession(kTenant, "s1").code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, MemoriesRoundTripEveryField) {
  auto store = OpenStore();
  MemoryRecord timed = Memory(MemoryScope::kSession, "s9", 3);
  timed.story_time = 1204;
  MemoryRecord timeless = Memory(MemoryScope::kCharacter, "", -1);
  timeless.embedding = {};
  ASSERT_TRUE(store->AddMemory(kTenant, timed).ok());
  ASSERT_TRUE(store->AddMemory(kTenant, timeless).ok());
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
  auto of_s9 = store->ListSessionMemories(kTenant, "s9");
  ASSERT_TRUE(of_s9.ok());
  EXPECT_EQ(of_s9->size(), 1u);
  EXPECT_TRUE(a.rated);
}

// A memory stored when its turn is acknowledged carries a provisional emotion; its rating
// replaces emotion and importance later, for its tenant only.
TEST_P(StoreTest, AProvisionalMemoryTakesItsRatingLater) {
  auto store = OpenStore();
  MemoryRecord provisional = Memory(MemoryScope::kSession, "s1", 0);
  provisional.rated = false;
  const absl::StatusOr<int64_t> id = store->AddMemory(kTenant, provisional);
  ASSERT_TRUE(id.ok()) << id.status();
  auto before = store->ListSessionMemories(kTenant, "s1");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  EXPECT_FALSE((*before)[0].rated);

  const std::array<float, 8> rated_emotion = {9, 1, 1, 1, 1, 1, 1, 2};
  EXPECT_EQ(store->UpdateMemoryRating("another tenant", *id, rated_emotion, 3).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->UpdateMemoryRating(kTenant, *id, rated_emotion, 3).ok());
  auto after = store->ListSessionMemories(kTenant, "s1");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_TRUE((*after)[0].rated);
  EXPECT_EQ((*after)[0].emotion, rated_emotion);
  EXPECT_FLOAT_EQ((*after)[0].importance, 3);
  EXPECT_EQ((*after)[0].text, provisional.text);
  EXPECT_EQ(store->UpdateMemoryRating(kTenant, *id + 1000, rated_emotion, 3).code(), absl::StatusCode::kNotFound);
  // Rated once: a second rating (another replica's) changes nothing.
  const std::array<float, 8> other = {1, 1, 1, 1, 9, 1, 1, 1};
  EXPECT_EQ(store->UpdateMemoryRating(kTenant, *id, other, 8).code(), absl::StatusCode::kNotFound);
  after = store->ListSessionMemories(kTenant, "s1");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)[0].emotion, rated_emotion);
}

TEST_P(StoreTest, EverythingSurvivesReopening) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
    ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
    ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0)).ok());
    ASSERT_TRUE(store->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 0)).ok());
  }
  auto store = OpenStore();
  EXPECT_TRUE(store->GetCharacter(kTenant, "c1").ok());
  EXPECT_TRUE(store->GetSession(kTenant, "s1").ok());
  EXPECT_EQ(store->ListTurns(kTenant, "s1")->size(), 1u);
  EXPECT_EQ(store->ListMemories()->size(), 1u);
}

// Another tenant's ids answer kNotFound on every call, exactly as unknown ids do; listings and
// the memories of a character, a session or a scope are the tenant's only.
TEST_P(StoreTest, TenantsSeeOnlyTheirOwnRecords) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter("a", Character("ca")).ok());
  ASSERT_TRUE(store->PutCharacter("b", Character("cb")).ok());
  ASSERT_TRUE(store->CreateSession("a", SessionOf("sa", "ca")).ok());
  ASSERT_TRUE(store->AppendTurn("a", Turn("sa", 0, "a's secret", "noted")).ok());
  MemoryRecord memory = Memory(MemoryScope::kUserCharacter, "sa", 0);
  memory.character_id = "ca";
  ASSERT_TRUE(store->AddMemory("a", memory).ok());
  MemoryRecord experience = Memory(MemoryScope::kCharacter, "", -1);
  ASSERT_TRUE(store->ReplaceCharacterMemories("a", "ca", {experience}).ok());

  // Characters: b cannot read, overwrite, list, delete or start a session with a's.
  EXPECT_EQ(store->GetCharacter("b", "ca").status().code(), absl::StatusCode::kNotFound);
  CharacterRecord hijack = Character("ca");
  hijack.card_json = "{}";
  EXPECT_EQ(store->PutCharacter("b", hijack).code(), absl::StatusCode::kNotFound);
  EXPECT_NE(store->GetCharacter("a", "ca")->card_json, "{}");
  auto b_characters = store->ListCharacters("b", {});
  ASSERT_TRUE(b_characters.ok());
  ASSERT_EQ(b_characters->size(), 1u);
  EXPECT_EQ((*b_characters)[0].id, "cb");
  EXPECT_EQ(store->DeleteCharacter("b", "ca").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->CreateSession("b", SessionOf("sb", "ca")).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->ListCharacterMemories("b", "ca")->empty());
  EXPECT_EQ(store->ListCharacterMemories("a", "ca")->size(), 1u);

  // Sessions and their turns, mood and memories.
  EXPECT_EQ(store->GetSession("b", "sa").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->ListSessions("b", "", {})->empty());
  EXPECT_TRUE(store->ListSessions("b", "ca", {})->empty());
  EXPECT_EQ(store->UpdateSessionSetup("b", "sa", "{}").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->UpdateSessionMood("b", "sa", {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->AppendTurn("b", Turn("sa", 1)).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->ListTurns("b", "sa")->empty());
  EXPECT_TRUE(store->ListSessionMemories("b", "sa")->empty());
  EXPECT_EQ(store->DeleteSession("b", "sa").code(), absl::StatusCode::kNotFound);

  // a still has everything; the start-up listings carry the owner.
  ASSERT_TRUE(store->GetSession("a", "sa").ok());
  EXPECT_EQ(store->GetSession("a", "sa")->tenant, "a");
  EXPECT_EQ(store->ListTurns("a", "sa")->size(), 1u);
  EXPECT_EQ(store->ListSessions("a", "", {})->size(), 1u);
  EXPECT_EQ(store->ListSessionMemories("a", "sa")->size(), 1u);
  auto all_sessions = store->ListSessionsOfAllTenants({});
  ASSERT_TRUE(all_sessions.ok());
  ASSERT_EQ(all_sessions->size(), 1u);
  EXPECT_EQ((*all_sessions)[0].tenant, "a");
  auto all_memories = store->ListMemories();
  ASSERT_TRUE(all_memories.ok());
  ASSERT_EQ(all_memories->size(), 2u);
  for (const MemoryRecord& m : *all_memories) EXPECT_EQ(m.tenant, "a");
  // b cannot replace the experiences of a's character.
  EXPECT_EQ(store->ReplaceCharacterMemories("b", "ca", {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->ListCharacterMemories("a", "ca")->size(), 1u);
}

// A session's version moves with each turn and setup change, not with its mood: what a replica
// compares to learn that its copy is stale.
TEST_P(StoreTest, SessionVersionCountsTurnsAndSetupChanges) {
  auto store = OpenStore();
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->version, 0);
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0)).ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->version, 1);
  ASSERT_TRUE(store->UpdateSessionSetup(kTenant, "s1", "{}").ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->version, 2);
  ASSERT_TRUE(store->UpdateSessionMood(kTenant, "s1", {1, 2, 3, 4, 5, 6, 7, 8}).ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->version, 2);
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s1", 5)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store->ListSessions(kTenant, "", {})->at(0).version, 2);
}

// Two stores on one database (two replicas, or two connections to one SQLite file) appending the
// same turns of one session at once: each turn index commits exactly once, the loser of each
// race gets kAborted, and the history has no gap and no duplicate.
TEST_P(StoreTest, TwoStoresAppendingOneSessionCommitEachTurnOnce) {
  auto first = OpenStore();
  auto second = OpenStore();
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(first->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  constexpr int kTurns = 40;
  std::atomic<int> wins[2] = {0, 0};
  std::atomic<int> other_errors = 0;
  auto append = [&](Store* store, int who) {
    for (int i = 0; i < kTurns; ++i) {
      const absl::Status status =
          store->AppendTurn(kTenant, Turn("s1", i, "u" + std::to_string(i), "from " + std::to_string(who)));
      if (status.ok()) {
        ++wins[who];
      } else if (status.code() != absl::StatusCode::kAborted &&
                 status.code() != absl::StatusCode::kUnavailable) {  // SQLite: the lock, past its wait
        ++other_errors;
        ADD_FAILURE() << status;
      }
    }
  };
  std::thread a(append, first.get(), 0);
  std::thread b(append, second.get(), 1);
  a.join();
  b.join();
  EXPECT_EQ(other_errors.load(), 0);
  auto turns = first->ListTurns(kTenant, "s1");
  ASSERT_TRUE(turns.ok());
  EXPECT_EQ(static_cast<int>(turns->size()), wins[0] + wins[1]);
  for (size_t i = 0; i < turns->size(); ++i) EXPECT_EQ((*turns)[i].turn_index, static_cast<int>(i));
  EXPECT_GE(turns->size(), static_cast<size_t>(kTurns) - 1);
}

// What one store commits, another on the same database reads at once (replicas share state).
TEST_P(StoreTest, AnotherStoreSeesCommittedRecords) {
  auto first = OpenStore();
  auto second = OpenStore();
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(first->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  ASSERT_TRUE(first->AppendTurn(kTenant, Turn("s1", 0, "hello", "hi there")).ok());
  const int64_t id = first->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 0)).value();
  auto turns = second->ListTurns(kTenant, "s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 1u);
  EXPECT_EQ((*turns)[0].reply_text, "hi there");
  auto memories = second->ListSessionMemories(kTenant, "s1");
  ASSERT_TRUE(memories.ok());
  ASSERT_EQ(memories->size(), 1u);
  EXPECT_EQ((*memories)[0].id, id);
  ASSERT_TRUE(second->AppendTurn(kTenant, Turn("s1", 1)).ok());
  EXPECT_EQ(first->AppendTurn(kTenant, Turn("s1", 1)).code(), absl::StatusCode::kAborted);
}

// Text the role-play layer stores is kept byte for byte: multi-byte UTF-8, quotes, backslashes
// and SQL-looking text.
TEST_P(StoreTest, TextRoundTripsByteForByte) {
  auto store = OpenStore();
  const std::string tricky = "it's \\x00 \"quoted\" -- ; DROP TABLE turns; \u00e9\u6f22\U0001f600 $1 %s\n\ttab";
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  SessionRecord session = SessionOf("s1", "c1");
  session.setup_json = tricky;
  ASSERT_TRUE(store->CreateSession(kTenant, session).ok());
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0, tricky, tricky)).ok());
  EXPECT_EQ(store->GetSession(kTenant, "s1")->setup_json, tricky);
  EXPECT_EQ(store->ListTurns(kTenant, "s1")->at(0).user_text, tricky);
  EXPECT_EQ(store->ListTurns(kTenant, "s1")->at(0).reply_text, tricky);
}

std::vector<std::string> Backends() {
  if (HavePostgresStore()) return {"sqlite", "postgres"};
  return {"sqlite"};
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace troupe
