// What only the PostgreSQL store has (the shared contract is store_test.cc): schema migrations
// under a lock, retries when the server drops the connection, its error codes, and URLs whose
// passwords never reach a message. Each test has a database of its own on the server ctest's
// fixture "postgres" starts.
#include "engine/store/postgres_store.h"

#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/postgres_database.h"
#include "tests/testing/store_records.h"

namespace troupe {
namespace {

using testing::Character;
using testing::kTenant;
using testing::Memory;
using testing::SessionOf;
using testing::Turn;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(database_.ok()); }

  std::unique_ptr<PostgresStore> Open(const PostgresPoolOptions& options = {}) {
    auto store = PostgresStore::Open(database_.url(), options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  testing::PostgresDatabase database_;
};

TEST_F(PostgresStoreTest, MigratesOnceAndRefusesANewerSchema) {
  ASSERT_NE(Open(), nullptr);
  EXPECT_EQ(testing::PostgresQueryValue(database_.url(), "SELECT version FROM troupe_schema"), "3");
  ASSERT_NE(Open(), nullptr);  // an up-to-date database opens as it is
  EXPECT_EQ(testing::PostgresQueryValue(database_.url(), "SELECT COUNT(*) FROM troupe_schema"), "1");
  ASSERT_TRUE(testing::PostgresAdminExec(database_.url(), "UPDATE troupe_schema SET version = 99"));
  auto newer = PostgresStore::Open(database_.url());
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("schema version 99"), absl::string_view::npos) << newer.status();
}

// Replicas starting together on an empty database: the advisory lock lets one migrate, the
// others find the schema made.
TEST_F(PostgresStoreTest, ReplicasStartingTogetherMigrateOnce) {
  std::vector<absl::Status> opened(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < opened.size(); ++i) {
    threads.emplace_back([&, i] { opened[i] = PostgresStore::Open(database_.url()).status(); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& status : opened) EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(testing::PostgresQueryValue(database_.url(), "SELECT version FROM troupe_schema"), "3");
}

// The server drops every connection (a restart, a failover, an idle timeout in a pooler): the
// next call reconnects and succeeds, and its turn is committed once.
TEST_F(PostgresStoreTest, ACallRetriesWhenTheServerDropsTheConnection) {
  PostgresPoolOptions one_connection;
  one_connection.num_connections = 1;
  auto store = Open(one_connection);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  ASSERT_TRUE(testing::PostgresAdminExec(
      database_.admin_url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                                 database_.name() + "' AND pid <> pg_backend_pid()"));
  const absl::Status appended = store->AppendTurn(kTenant, Turn("s1", 0, "after the drop", "still here"));
  ASSERT_TRUE(appended.ok()) << appended;
  auto turns = store->ListTurns(kTenant, "s1");
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 1u);
  EXPECT_EQ((*turns)[0].reply_text, "still here");
}

// The network fails between a COMMIT and its reply: the pool runs the write again, and the
// retry finds what the first try committed instead of doing it twice or failing on it.
TEST_F(PostgresStoreTest, AWriteWhoseCommitReplyIsLostIsDoneOnce) {
  PostgresPoolOptions options;
  options.first_backoff = absl::Milliseconds(1);
  std::set<std::string> lost;  // each unit of work loses its first COMMIT reply
  options.lose_commit_reply_for_testing = [&lost](std::string_view what) {
    return lost.insert(std::string(what)).second;
  };
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c2")).ok());
  const absl::Status created = store->CreateSession(kTenant, SessionOf("s1", "c1"));
  EXPECT_TRUE(created.ok()) << created;
  const absl::Status appended = store->AppendTurn(kTenant, Turn("s1", 0, "hello", "hi", 42));
  EXPECT_TRUE(appended.ok()) << appended;
  absl::StatusOr<int64_t> memory = store->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 0));
  EXPECT_TRUE(memory.ok()) << memory.status();
  EXPECT_EQ(store->ListTurns(kTenant, "s1")->size(), 1u);
  ASSERT_EQ(store->ListSessionMemories(kTenant, "s1")->size(), 1u);
  EXPECT_EQ(store->ListSessionMemories(kTenant, "s1")->at(0).id, *memory);
  const absl::Status deleted = store->DeleteCharacter(kTenant, "c2");
  EXPECT_TRUE(deleted.ok()) << deleted;
  const absl::Status session_deleted = store->DeleteSession(kTenant, "s1");
  EXPECT_TRUE(session_deleted.ok()) << session_deleted;
  EXPECT_EQ(lost, (std::set<std::string>{"add memory", "append turn", "create session", "delete character",
                                         "delete session"}));
  // A second append of the same index is still refused: only a retry is forgiven.
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s2", "c1")).ok());
  ASSERT_TRUE(store->AppendTurn(kTenant, Turn("s2", 0)).ok());
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s2", 0)).code(), absl::StatusCode::kAborted);
}

// Replicas racing to remember one turn (a backfill beside the turn's own writer): one memory per
// turn and scope, the second writer told so.
TEST_F(PostgresStoreTest, ATurnHasOneMemoryPerScope) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 3)).ok());
  EXPECT_EQ(store->AddMemory(kTenant, Memory(MemoryScope::kSession, "s1", 3)).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store->AddMemory(kTenant, Memory(MemoryScope::kUserCharacter, "s1", 3)).ok());  // another scope
  EXPECT_TRUE(store->AddMemory("other", Memory(MemoryScope::kSession, "s1", 3)).ok());        // another tenant
  EXPECT_TRUE(store->AddMemory(kTenant, Memory(MemoryScope::kCharacter, "", -1)).ok());       // experiences:
  EXPECT_TRUE(store->AddMemory(kTenant, Memory(MemoryScope::kCharacter, "", -1)).ok());       // no turn
  EXPECT_EQ(store->ListMemories()->size(), 5u);
}

// PostgreSQL's text holds no NUL byte and only valid UTF-8: such text is the caller's error,
// kInvalidArgument, and nothing is stored.
TEST_F(PostgresStoreTest, TextPostgresCannotHoldIsInvalidArgument) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutCharacter(kTenant, Character("c1")).ok());
  ASSERT_TRUE(store->CreateSession(kTenant, SessionOf("s1", "c1")).ok());
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s1", 0, std::string("a\0b", 3))).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->AppendTurn(kTenant, Turn("s1", 0, "\xff\xfe")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->ListTurns(kTenant, "s1")->empty());
  EXPECT_TRUE(store->AppendTurn(kTenant, Turn("s1", 0)).ok());
}

TEST_F(PostgresStoreTest, ARefusedLoginIsFailedPreconditionAndHidesThePassword) {
  std::string url = database_.url();
  url.replace(url.find("/" + database_.name()), database_.name().size() + 1, "/no_such_database");
  url.replace(url.find("postgresql://"), 13, "postgresql://troupe:hunter2@");
  auto store = PostgresStore::Open(url);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_EQ(store.status().message().find("hunter2"), absl::string_view::npos) << store.status();
  EXPECT_NE(store.status().message().find("no_such_database"), absl::string_view::npos) << store.status();
}

TEST_F(PostgresStoreTest, AServerThatDoesNotAnswerIsUnavailable) {
  auto store = PostgresStore::Open("postgresql:///postgres?host=/nonexistent-troupe-socket-dir&user=troupe");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
}

TEST(RedactDatabaseUrlTest, LeavesOutPasswords) {
  EXPECT_EQ(RedactDatabaseUrl("postgresql://app:s3cret@db:5432/troupe"), "postgresql://app:***@db:5432/troupe");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://app@db/troupe?password=s3cret&sslmode=require"),
            "postgresql://app@db/troupe?password=***&sslmode=require");
  EXPECT_EQ(RedactDatabaseUrl("postgresql:///postgres?host=/tmp/pg&user=troupe"),
            "postgresql:///postgres?host=/tmp/pg&user=troupe");
}

}  // namespace
}  // namespace troupe
