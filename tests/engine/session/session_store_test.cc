#include "engine/session/session_store.h"

#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

SessionStore::Turn T(std::string user, std::string reply) {
  SessionStore::Turn t;
  t.user_message = std::move(user);
  t.reply = std::move(reply);
  return t;
}

TEST(SessionStoreTest, CreateGetDelete) {
  SessionStore store;
  absl::StatusOr<Session> created = store.Create("", Character{"Mira", "You are Mira, a bard."});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->id.size(), 32u);
  EXPECT_EQ(created->id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(created->history.empty());

  absl::StatusOr<Session> got = store.Get("", created->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->character.name, "Mira");
  EXPECT_EQ(got->character.system_prompt, "You are Mira, a bard.");
  EXPECT_EQ(store.size(), 1);

  EXPECT_TRUE(store.Delete("", created->id).ok());
  EXPECT_EQ(store.Get("", created->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("", created->id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.size(), 0);
}

// An inline session is its creator's tenant's: another tenant's Get and Delete answer kNotFound,
// worded as for an unknown id, and leave it alone.
TEST(SessionStoreTest, AnotherTenantsSessionIsNotFound) {
  SessionStore store;
  absl::StatusOr<Session> created = store.Create("a", Character{"Mira", "secret system prompt"});
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->tenant, "a");
  const absl::Status unknown = store.Get("b", "0123456789abcdef0123456789abcdef").status();
  const absl::Status other = store.Get("b", created->id).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Get("", created->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("b", created->id).code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Session> mine = store.Get("a", created->id);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->character.system_prompt, "secret system prompt");
  EXPECT_TRUE(store.Delete("a", created->id).ok());
}

TEST(SessionStoreTest, EmptyNameBecomesAssistant) {
  SessionStore store;
  absl::StatusOr<Session> created = store.Create("", Character{});
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->character.name, "Assistant");
}

TEST(SessionStoreTest, IdsAreDistinct) {
  SessionStore store;
  std::set<SessionId> ids;
  for (int i = 0; i < 100; ++i) ids.insert(store.Create("", Character{"a", ""})->id);
  EXPECT_EQ(ids.size(), 100u);
}

TEST(SessionStoreTest, RefusesPastMaxInlineSessions) {
  SessionStoreOptions options;
  options.max_inline_sessions = 2;
  SessionStore store(options);
  ASSERT_TRUE(store.Create("", Character{"a", ""}).ok());
  absl::StatusOr<Session> second = store.Create("", Character{"b", ""});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(store.Create("", Character{"c", ""}).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store.Delete("", second->id).ok());
  EXPECT_TRUE(store.Create("", Character{"c", ""}).ok());
}

// A clock the test moves by hand.
struct ManualClock {
  absl::Time now = absl::FromUnixSeconds(1'000'000'000);
  std::function<absl::Time()> Fn() {
    return [this] { return now; };
  }
};

TEST(SessionStoreTest, InlineSessionsExpireAfterTheIdleTtlAndEveryUseRenewsIt) {
  ManualClock clock;
  SessionStore store(SessionStoreOptions{.inline_idle_ttl = absl::Hours(1), .now = clock.Fn()});
  const SessionId id = store.Create("", Character{"a", ""})->id;
  clock.now += absl::Minutes(59);
  ASSERT_TRUE(store.Get("", id).ok());  // a use: the hour starts again
  clock.now += absl::Minutes(59);
  ASSERT_TRUE(store.AppendTurn(id, 0, T("hi", "hello")).ok());  // a use too
  clock.now += absl::Minutes(59);
  ASSERT_TRUE(store.Get("", id).ok());
  clock.now += absl::Hours(1);
  const absl::Status expired = store.Get("", id).status();
  EXPECT_EQ(expired.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(expired.message().find("expire"), std::string::npos) << expired;
  EXPECT_EQ(store.num_inline(), 0);
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(store.Delete("", id).code(), absl::StatusCode::kNotFound);
}

TEST(SessionStoreTest, ExpiredInlineSessionsFreeTheCap) {
  ManualClock clock;
  SessionStore store(SessionStoreOptions{.max_inline_sessions = 2, .inline_idle_ttl = absl::Minutes(30),
                                         .now = clock.Fn()});
  const SessionId first = store.Create("", Character{"a", ""})->id;
  clock.now += absl::Minutes(20);
  const SessionId second = store.Create("", Character{"b", ""})->id;
  EXPECT_EQ(store.Create("", Character{"c", ""}).status().code(), absl::StatusCode::kResourceExhausted);
  clock.now += absl::Minutes(10);  // `first` is 30 minutes idle, `second` 10
  absl::StatusOr<Session> third = store.Create("", Character{"c", ""});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(store.num_inline(), 2);
  EXPECT_EQ(store.Get("", first).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.Get("", second).ok());
}

TEST(SessionStoreTest, ZeroTtlNeverExpires) {
  ManualClock clock;
  SessionStore store(SessionStoreOptions{.inline_idle_ttl = absl::ZeroDuration(), .now = clock.Fn()});
  const SessionId id = store.Create("", Character{"a", ""})->id;
  clock.now += absl::Hours(24 * 365);
  EXPECT_TRUE(store.Get("", id).ok());
}

TEST(SessionStoreTest, AppendTurnGrowsHistoryInOrder) {
  SessionStore store;
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  ASSERT_TRUE(store.AppendTurn(id, 0, T("hello", "hi there")).ok());
  ASSERT_TRUE(store.AppendTurn(id, 2, T("how are you?", "well")).ok());
  const Session session = *store.Get("", id);
  ASSERT_EQ(session.history.size(), 4u);
  EXPECT_EQ(session.history[0].role, "user");
  EXPECT_EQ(session.history[0].content, "hello");
  EXPECT_EQ(session.history[1].role, "assistant");
  EXPECT_EQ(session.history[1].content, "hi there");
  EXPECT_EQ(session.history[2].content, "how are you?");
  EXPECT_EQ(session.history[3].content, "well");
}

TEST(SessionStoreTest, AppendTurnFromStaleSnapshotIsAborted) {
  SessionStore store;
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  ASSERT_TRUE(store.AppendTurn(id, 0, T("first", "reply")).ok());
  // A second turn rendered from the empty history finished later.
  EXPECT_EQ(store.AppendTurn(id, 0, T("second", "reply")).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store.Get("", id)->history.size(), 2u);
}

TEST(SessionStoreTest, AppendTurnToDeletedSessionIsNotFound) {
  SessionStore store;
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  ASSERT_TRUE(store.Delete("", id).ok());
  EXPECT_EQ(store.AppendTurn(id, 0, T("x", "y")).code(), absl::StatusCode::kNotFound);
}

TEST(SessionStoreTest, HistoryIsBounded) {
  SessionStoreOptions options;
  options.max_history_messages = 4;
  SessionStore store(options);
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  ASSERT_TRUE(store.AppendTurn(id, 0, T("a", "b")).ok());
  ASSERT_TRUE(store.AppendTurn(id, 2, T("c", "d")).ok());
  EXPECT_EQ(store.AppendTurn(id, 4, T("e", "f")).code(), absl::StatusCode::kResourceExhausted);
}

TEST(SessionStoreTest, ConcurrentTurnsNeverInterleave) {
  SessionStore store;
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  // Each thread renders from a snapshot and appends against its version, retrying on kAborted,
  // as concurrent Chat RPCs on one session would.
  constexpr int kThreads = 4;
  constexpr int kTurnsPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, &id, t] {
      for (int turn = 0; turn < kTurnsPerThread;) {
        const size_t version = store.Get("", id)->history.size();
        const std::string tag = std::to_string(t) + ":" + std::to_string(turn);
        const absl::Status status = store.AppendTurn(id, version, T("u" + tag, "a" + tag));
        if (status.ok()) ++turn;
        else ASSERT_EQ(status.code(), absl::StatusCode::kAborted);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const Session session = *store.Get("", id);
  ASSERT_EQ(session.history.size(), 2u * kThreads * kTurnsPerThread);
  for (size_t i = 0; i < session.history.size(); i += 2) {
    EXPECT_EQ(session.history[i].role, "user");
    EXPECT_EQ(session.history[i + 1].role, "assistant");
    EXPECT_EQ(session.history[i].content.substr(1), session.history[i + 1].content.substr(1));
  }
}

}  // namespace
}  // namespace troupe
