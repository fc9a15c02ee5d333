// Replicas on one shared database: two MemoryServices, each with its own PostgresStore on one
// PostgreSQL database (the server ctest's fixture "postgres" starts), with the real embedding
// model. A memory one replica stores is recalled on the other once its writer thread has caught
// up, as after a session moves between replicas.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "engine/embedding/bert_embedder.h"
#include "engine/memory/memory_service.h"
#include "engine/store/postgres_store.h"
#include "gtest/gtest.h"
#include "tests/testing/minilm.h"
#include "tests/testing/postgres_database.h"

namespace troupe {
namespace {

TEST(MemoryServiceReplicasTest, AMemoryStoredOnOneReplicaIsRecalledOnTheOther) {
  auto embedder = BertEmbedder::Load(testing::MiniLmDir());
  ASSERT_TRUE(embedder.ok()) << embedder.status() << " (run scripts/fetch-embedder.sh)";
  testing::PostgresDatabase database;
  ASSERT_TRUE(database.ok());
  auto store_a = PostgresStore::Open(database.url());
  auto store_b = PostgresStore::Open(database.url());
  ASSERT_TRUE(store_a.ok() && store_b.ok());
  ASSERT_TRUE((*store_a)->PutCharacter("t", {.id = "mara", .card_json = "{}", .create_time_ms = 1, .update_time_ms = 1}).ok());
  SessionRecord session;
  session.id = "s1";
  session.character_id = "mara";
  session.user_id = "ash";
  session.setup_json = "{}";
  ASSERT_TRUE((*store_a)->CreateSession("t", session).ok());

  MemoryServiceOptions options;
  options.catch_up_interval = absl::Milliseconds(20);
  MemoryService replica_a(store_a->get(), embedder->get(), nullptr, options);
  MemoryService replica_b(store_b->get(), embedder->get(), nullptr, options);
  ASSERT_TRUE(replica_a.Load().ok());
  ASSERT_TRUE(replica_b.Load().ok());

  TurnMemoryInput turn;
  turn.keys = {.tenant = "t", .session_id = "s1", .character_id = "mara", .user_id = "ash"};
  turn.turn_index = 0;
  turn.user_text = "My sister Lyra keeps bees behind the old mill.";
  turn.reply_text = "Then I shall bring her a jar of wildflower seeds.";
  turn.user_name = "Ash";
  turn.character_name = "Mara";
  turn.emotion = EmotionVector{6, 5, 1, 1, 2, 1, 1, 5};
  ASSERT_TRUE(replica_a.Remember(turn).ok());
  replica_a.Flush();

  RecallRequest query;
  query.keys = turn.keys;
  query.query_text = "Who keeps bees?";
  query.options.k = 3;
  // B learns of it within a few catch-up intervals; another tenant never does.
  std::vector<RecalledUnit> recalled;
  for (int tries = 0; tries < 500 && recalled.empty(); ++tries) {
    absl::StatusOr<std::vector<RecalledUnit>> got = replica_b.Recall(query);
    ASSERT_TRUE(got.ok()) << got.status();
    recalled = *got;
    if (recalled.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(recalled.size(), 1u);
  EXPECT_NE(recalled[0].text.find("Lyra keeps bees"), std::string::npos);
  EXPECT_EQ(replica_b.num_memories(), 1);
  RecallRequest other_tenant = query;
  other_tenant.keys.tenant = "u";
  EXPECT_TRUE(replica_b.Recall(other_tenant)->empty());
}

}  // namespace
}  // namespace troupe
