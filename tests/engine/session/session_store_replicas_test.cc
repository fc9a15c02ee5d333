// Replicas on one shared database: two SessionStores, each with its own PostgresStore on one
// PostgreSQL database (the server ctest's fixture "postgres" starts), serve the same durable
// session in turn, as two troupe processes behind a gateway do when a session moves.
#include <memory>
#include <string>

#include "engine/session/session_store.h"
#include "engine/store/postgres_store.h"
#include "gtest/gtest.h"
#include "tests/testing/session_turn.h"
#include "tests/testing/postgres_database.h"

namespace troupe {
namespace {

constexpr auto T = &testing::TurnOf;

class SessionStoreReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(database_.ok());
    for (auto* store : {&store_a_, &store_b_}) {
      auto opened = PostgresStore::Open(database_.url());
      ASSERT_TRUE(opened.ok()) << opened.status();
      *store = std::move(*opened);
    }
    ASSERT_TRUE(store_a_->PutCharacter("t", {.id = "mara", .card_json = R"({"data":{"name":"Mara"}})",
                                             .create_time_ms = 1, .update_time_ms = 1})
                    .ok());
    replica_a_ = std::make_unique<SessionStore>(SessionStoreOptions{}, store_a_.get());
    replica_b_ = std::make_unique<SessionStore>(SessionStoreOptions{}, store_b_.get());
  }

  // A durable session created on replica A ("" and a test failure when it cannot be made).
  SessionId NewSession() {
    absl::StatusOr<Session> created = replica_a_->CreateDurable("t", "mara", "Mara", SessionSetup{}, "Hello.");
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->id : SessionId();
  }

  testing::PostgresDatabase database_;
  std::unique_ptr<PostgresStore> store_a_, store_b_;
  std::unique_ptr<SessionStore> replica_a_, replica_b_;
};

// A session moves between replicas turn by turn: each serves it with the whole history,
// whatever it held in memory before.
TEST_F(SessionStoreReplicasTest, EitherReplicaServesTheSessionWithItsWholeHistory) {
  const SessionId id = NewSession();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(replica_a_->AppendTurn(id, 1, T("one", "reply one")).ok());

  absl::StatusOr<Session> on_b = replica_b_->Get("t", id);  // B loads it
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  ASSERT_EQ(on_b->num_turns, 1);
  ASSERT_TRUE(replica_b_->AppendTurn(id, on_b->history.size(), T("two", "reply two")).ok());

  // A still holds its copy of one turn; its next Get sees B's turn.
  absl::StatusOr<Session> on_a = replica_a_->Get("t", id);
  ASSERT_TRUE(on_a.ok()) << on_a.status();
  ASSERT_EQ(on_a->num_turns, 2);
  EXPECT_EQ(on_a->history.back().content, "reply two");
  ASSERT_TRUE(replica_a_->AppendTurn(id, on_a->history.size(), T("three", "reply three")).ok());

  on_b = replica_b_->Get("t", id);
  ASSERT_TRUE(on_b.ok());
  ASSERT_EQ(on_b->num_turns, 3);
  EXPECT_EQ(on_b->history.back().content, "reply three");
  // The mood a replica's memory writer stores reaches the other without a turn.
  const EmotionVector mood = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(store_b_->UpdateSessionMood("t", id, mood).ok());
  EXPECT_EQ(replica_a_->Get("t", id)->mood, mood);
}

// Two replicas running a turn of one session at once: the first to commit wins, the other gets
// kAborted (as two turns in one process do), and its retry sees the winner's turn.
TEST_F(SessionStoreReplicasTest, TheSecondReplicaToCommitATurnIsAborted) {
  const SessionId id = NewSession();
  ASSERT_FALSE(id.empty());
  absl::StatusOr<Session> on_a = replica_a_->Get("t", id);
  absl::StatusOr<Session> on_b = replica_b_->Get("t", id);
  ASSERT_TRUE(on_a.ok() && on_b.ok());
  ASSERT_TRUE(replica_a_->AppendTurn(id, on_a->history.size(), T("from a", "a's reply")).ok());
  const absl::Status late = replica_b_->AppendTurn(id, on_b->history.size(), T("from b", "b's reply"));
  EXPECT_EQ(late.code(), absl::StatusCode::kAborted) << late;
  absl::StatusOr<Session> retry = replica_b_->Get("t", id);
  ASSERT_TRUE(retry.ok());
  ASSERT_EQ(retry->num_turns, 1);
  EXPECT_EQ(retry->history.back().content, "a's reply");
  EXPECT_TRUE(replica_b_->AppendTurn(id, retry->history.size(), T("from b", "b's reply")).ok());
  EXPECT_EQ(store_a_->ListTurns("t", id)->size(), 2u);
}

// A turn that folds old turns into a summary carries the summary in its own commit: when another
// replica's turn wins, the loser's summary never reaches the store.
TEST_F(SessionStoreReplicasTest, ARefusedTurnLeavesTheSummaryAsItWas) {
  const SessionId id = NewSession();
  ASSERT_FALSE(id.empty());
  absl::StatusOr<Session> on_a = replica_a_->Get("t", id);
  absl::StatusOr<Session> on_b = replica_b_->Get("t", id);
  ASSERT_TRUE(on_a.ok() && on_b.ok());
  SessionStore::Turn winner = T("from b", "b's reply");
  winner.new_summary = "B's summary.";
  winner.new_summarized_turns = 1;
  ASSERT_TRUE(replica_b_->AppendTurn(id, on_b->history.size(), std::move(winner)).ok());
  SessionStore::Turn loser = T("from a", "a's reply");
  loser.new_summary = "A's summary.";
  loser.new_summarized_turns = 1;
  EXPECT_EQ(replica_a_->AppendTurn(id, on_a->history.size(), std::move(loser)).code(), absl::StatusCode::kAborted);
  absl::StatusOr<SessionRecord> stored = store_a_->GetSession("t", id);
  ASSERT_TRUE(stored.ok());
  EXPECT_NE(stored->setup_json.find("B's summary."), std::string::npos) << stored->setup_json;
  EXPECT_EQ(stored->setup_json.find("A's summary."), std::string::npos) << stored->setup_json;
  absl::StatusOr<Session> reloaded = replica_a_->Get("t", id);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->summary, "B's summary.");
  EXPECT_EQ(reloaded->num_turns, 1);
}

// A session deleted on one replica is gone on the other, which held it in memory.
TEST_F(SessionStoreReplicasTest, ADeleteOnOneReplicaReachesTheOther) {
  const SessionId id = NewSession();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(replica_b_->Get("t", id).ok());
  ASSERT_TRUE(replica_a_->Delete("t", id).ok());
  EXPECT_EQ(replica_b_->Get("t", id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(replica_b_->Get("other-tenant", id).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace troupe
