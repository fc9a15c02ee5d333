#include "engine/session/session_store.h"

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/testing/session_turn.h"
#include "tests/testing/gated_store.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

constexpr auto T = &testing::TurnOf;

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

// The next fold's summary made ahead (turn_planner.h): one claim per start, kept only while the
// session's summary still starts there, dropped when the summary moves on.
TEST(SessionStoreTest, APendingSummaryIsClaimedOnceAndDroppedWhenTheSummaryMovesOn) {
  SessionStore store;
  const SessionId id = store.Create("", Character{"Mira", ""})->id;
  for (int t = 0; t < 4; ++t) ASSERT_TRUE(store.AppendTurn(id, 2 * t, T("hello", "hi")).ok());
  EXPECT_FALSE(store.ClaimPendingSummary(id, 1, 3)) << "the summary covers 0 turns, not 1";
  EXPECT_FALSE(store.ClaimPendingSummary(id, 0, 5)) << "past the turns there are";
  EXPECT_FALSE(store.ClaimPendingSummary("nope", 0, 2));
  ASSERT_TRUE(store.ClaimPendingSummary(id, 0, 3));
  EXPECT_FALSE(store.ClaimPendingSummary(id, 0, 2)) << "claimed already";
  ASSERT_TRUE(store.Get("", id)->pending_summary.has_value());
  EXPECT_FALSE(store.Get("", id)->pending_summary->summary.has_value()) << "being made";

  store.SetPendingSummary(id, 0, "They met.");
  const Session made = *store.Get("", id);
  ASSERT_TRUE(made.pending_summary.has_value());
  EXPECT_EQ(made.pending_summary->to_turn, 3);
  EXPECT_EQ(made.pending_summary->summary, "They met.");

  ASSERT_TRUE(store.SetSummary(id, "They met.", 3).ok());  // the fold took it
  EXPECT_FALSE(store.Get("", id)->pending_summary.has_value());
  store.SetPendingSummary(id, 0, "late");  // a summary for the old start lands after the fold
  EXPECT_FALSE(store.Get("", id)->pending_summary.has_value());

  ASSERT_TRUE(store.ClaimPendingSummary(id, 3, 4));
  store.SetPendingSummary(id, 3, std::nullopt);  // it failed: the claim is let go
  EXPECT_FALSE(store.Get("", id)->pending_summary.has_value());
  EXPECT_TRUE(store.ClaimPendingSummary(id, 3, 4));
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

// Durable sessions on a real SQLite file, behind a GatedStore that can hold one write
// mid-flight.
class DurableSessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SqliteStore>> opened = SqliteStore::Open(dir_.File("troupe.db"));
    ASSERT_TRUE(opened.ok()) << opened.status();
    sqlite_ = std::move(*opened);
    ASSERT_TRUE(sqlite_->PutCharacter("t", {.id = "mara", .card_json = R"({"data":{"name":"Mara"}})",
                                            .create_time_ms = 1, .update_time_ms = 1})
                    .ok());
    gated_ = std::make_unique<testing::GatedStore>(sqlite_.get());
  }

  SessionId NewDurable(SessionStore& sessions) {
    absl::StatusOr<Session> created = sessions.CreateDurable("t", "mara", "Mara", SessionSetup{}, "Hello.");
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->id : SessionId();
  }

  // Runs `calls` on another thread while a write is held at the gate, and says whether they
  // all returned without the held write going on. Before the per-session write mutex, they
  // waited for the held write (SessionStore's one mutex was held across it): then the gate is
  // opened after a minute so the test ends, failing, instead of hanging.
  bool RunBesideHeldWrite(std::function<void()> calls) {
    std::future<void> done = std::async(std::launch::async, std::move(calls));
    if (done.wait_for(std::chrono::seconds(60)) == std::future_status::ready) return true;
    gated_->Release();
    done.wait();
    return false;
  }

  testing::ScopedTempDir dir_{"session_store"};
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<testing::GatedStore> gated_;
};

// While one durable turn is being written, inline sessions, other durable sessions, reads of
// the session itself and size() go on: none waits for that disk write.
TEST_F(DurableSessionStoreTest, AWriteInFlightBlocksNoOtherCall) {
  SessionStore sessions({}, gated_.get());
  const SessionId busy = NewDurable(sessions);
  const SessionId other = NewDurable(sessions);
  gated_->HoldNext(testing::GatedStore::Op::kAppendTurn);
  std::future<absl::Status> held = std::async(std::launch::async, [&] {
    return sessions.AppendTurn(busy, 1, T("hi", "hello"));
  });
  gated_->WaitUntilHeld();
  const bool ran_beside = RunBesideHeldWrite([&] {
    absl::StatusOr<Session> inline_session = sessions.Create("t", Character{"Ina", ""});
    ASSERT_TRUE(inline_session.ok());
    EXPECT_TRUE(sessions.AppendTurn(inline_session->id, 0, T("a", "b")).ok());
    EXPECT_TRUE(sessions.AppendTurn(other, 1, T("c", "d")).ok());  // a durable write of its own
    absl::StatusOr<Session> snapshot = sessions.Get("t", busy);
    ASSERT_TRUE(snapshot.ok());
    EXPECT_EQ(snapshot->history.size(), 1u);  // the greeting; the held turn is not in yet
    EXPECT_EQ(sessions.size(), 3);
    EXPECT_TRUE(sessions.Delete("t", inline_session->id).ok());
  });
  EXPECT_TRUE(ran_beside) << "a call waited for another session's disk write";
  gated_->Release();
  EXPECT_TRUE(held.get().ok());
  EXPECT_EQ(sessions.Get("t", busy)->history.size(), 3u);
  EXPECT_EQ(sessions.Get("t", other)->history.size(), 3u);
}

// Two turns of one session rendered from the same version: the second waits for the first's
// write, then is refused with kAborted; the Store holds the first only.
TEST_F(DurableSessionStoreTest, ASecondTurnOfTheSameSessionWaitsAndIsAborted) {
  SessionStore sessions({}, gated_.get());
  const SessionId id = NewDurable(sessions);
  gated_->HoldNext(testing::GatedStore::Op::kAppendTurn);
  std::future<absl::Status> first = std::async(std::launch::async, [&] {
    return sessions.AppendTurn(id, 1, T("first", "one"));
  });
  gated_->WaitUntilHeld();
  std::future<absl::Status> second = std::async(std::launch::async, [&] {
    return sessions.AppendTurn(id, 1, T("second", "two"));
  });
  gated_->Release();
  EXPECT_TRUE(first.get().ok());
  EXPECT_EQ(second.get().code(), absl::StatusCode::kAborted);
  absl::StatusOr<std::vector<TurnRecord>> turns = sqlite_->ListTurns("t", id);
  ASSERT_TRUE(turns.ok());
  ASSERT_EQ(turns->size(), 1u);
  EXPECT_EQ((*turns)[0].user_text, "first");
}

// A delete that lands while another call loads the session from the Store leaves no copy in
// memory: the next Get answers kNotFound.
TEST_F(DurableSessionStoreTest, ADeleteDuringALoadLeavesNoGhost) {
  SessionId id;
  {
    SessionStore writer({}, sqlite_.get());
    id = NewDurable(writer);
    ASSERT_TRUE(writer.AppendTurn(id, 1, T("hi", "hello")).ok());
  }
  SessionStore sessions({}, gated_.get());  // a restart: nothing cached
  gated_->HoldNext(testing::GatedStore::Op::kListTurns);  // the load has read the session row
  std::future<absl::StatusOr<Session>> load = std::async(std::launch::async, [&] { return sessions.Get("t", id); });
  gated_->WaitUntilHeld();
  const bool ran_beside = RunBesideHeldWrite([&] { EXPECT_TRUE(sessions.Delete("t", id).ok()); });
  EXPECT_TRUE(ran_beside) << "Delete waited for another call's load";
  gated_->Release();
  (void)load.get();  // whatever it read before the delete
  EXPECT_EQ(sessions.Get("t", id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sessions.size(), 0);
}

// A durable session being written counts against max_sessions.
TEST_F(DurableSessionStoreTest, ACreateInFlightHoldsItsPlaceUnderTheCap) {
  SessionStoreOptions options;
  options.max_sessions = 1;
  SessionStore sessions(options, gated_.get());
  gated_->HoldNext(testing::GatedStore::Op::kCreateSession);
  std::future<absl::StatusOr<Session>> first = std::async(std::launch::async, [&] {
    return sessions.CreateDurable("t", "mara", "Mara", SessionSetup{}, "");
  });
  gated_->WaitUntilHeld();
  EXPECT_EQ(sessions.CreateDurable("t", "mara", "Mara", SessionSetup{}, "").status().code(),
            absl::StatusCode::kResourceExhausted);
  gated_->Release();
  EXPECT_TRUE(first.get().ok());
  EXPECT_EQ(sessions.size(), 1);
}

// Turns of many durable sessions from many threads: each session's history in memory and in
// the Store is whole turns in order, and a restart loads the same.
TEST_F(DurableSessionStoreTest, ConcurrentTurnsOfManySessionsAreAllStoredInOrder) {
  constexpr int kSessions = 4;
  constexpr int kThreads = 4;
  constexpr int kTurnsPerThread = 8;
  SessionStore sessions({}, sqlite_.get());
  std::vector<SessionId> ids;
  for (int i = 0; i < kSessions; ++i) ids.push_back(NewDurable(sessions));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int turn = 0; turn < kTurnsPerThread;) {
        const SessionId& id = ids[(t + turn) % kSessions];
        const size_t version = sessions.Get("t", id)->history.size();
        const std::string tag = std::to_string(t) + ":" + std::to_string(turn);
        const absl::Status status = sessions.AppendTurn(id, version, T("u" + tag, "a" + tag));
        if (status.ok()) ++turn;
        else ASSERT_EQ(status.code(), absl::StatusCode::kAborted) << status;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  SessionStore reloaded({}, sqlite_.get());
  int total_turns = 0;
  for (const SessionId& id : ids) {
    const Session live = *sessions.Get("t", id);
    absl::StatusOr<Session> loaded = reloaded.Get("t", id);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_EQ(loaded->history.size(), live.history.size());
    for (size_t i = 1; i < live.history.size(); i += 2) {  // after the greeting: user, reply
      EXPECT_EQ(live.history[i].content.substr(1), live.history[i + 1].content.substr(1));
      EXPECT_EQ(loaded->history[i].content, live.history[i].content);
      EXPECT_EQ(loaded->history[i + 1].content, live.history[i + 1].content);
    }
    total_turns += live.num_turns;
  }
  EXPECT_EQ(total_turns, kThreads * kTurnsPerThread);
}

}  // namespace
}  // namespace troupe
