#include "engine/session/turn_commit.h"

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

// The records a durable session and its memories leave behind, in memory. Only what
// SessionStore and MemoryService use here is implemented; the rest answers kUnimplemented.
class FakeStore final : public Store {
 public:
  absl::Status PutCharacter(const std::string&, const CharacterRecord&) override { return Unused(); }
  absl::StatusOr<CharacterRecord> GetCharacter(const std::string&, const std::string&) override { return Unused(); }
  absl::StatusOr<std::vector<CharacterRecord>> ListCharacters(const std::string&, const PageRequest&) override {
    return Unused();
  }
  absl::Status DeleteCharacter(const std::string&, const std::string&) override { return Unused(); }

  absl::Status CreateSession(const std::string& tenant, const SessionRecord& session) override {
    absl::MutexLock lock(&mu_);
    sessions_[session.id] = session;
    sessions_[session.id].tenant = tenant;
    return absl::OkStatus();
  }
  absl::StatusOr<SessionRecord> GetSession(const std::string& tenant, const std::string& id) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.tenant != tenant) return absl::NotFoundError(id);
    return it->second;
  }
  absl::StatusOr<std::vector<SessionRecord>> ListSessions(const std::string&, const std::string&,
                                                          const PageRequest&) override {
    return Unused();
  }
  absl::StatusOr<std::vector<SessionRecord>> ListSessionsOfAllTenants(const PageRequest&) override {
    return std::vector<SessionRecord>{};  // MemoryService::Load backfills nothing
  }
  absl::Status UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                  const std::string& setup_json) override {
    absl::MutexLock lock(&mu_);
    if (sessions_[id].tenant != tenant) return absl::NotFoundError(id);
    sessions_[id].setup_json = setup_json;
    return absl::OkStatus();
  }
  absl::Status DeleteSession(const std::string&, const std::string&) override { return Unused(); }
  absl::Status AppendTurn(const std::string& tenant, const TurnRecord& turn) override {
    absl::MutexLock lock(&mu_);
    if (sessions_[turn.session_id].tenant != tenant) return absl::NotFoundError(turn.session_id);
    if (turn.setup_json) sessions_[turn.session_id].setup_json = *turn.setup_json;  // one transaction
    turns_.push_back(turn);
    return absl::OkStatus();
  }
  absl::Status UpdateSessionMood(const std::string& tenant, const std::string& id,
                                 const std::array<float, 8>& mood) override {
    absl::MutexLock lock(&mu_);
    if (sessions_[id].tenant != tenant) return absl::NotFoundError(id);
    sessions_[id].mood = mood;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<TurnRecord>> ListTurns(const std::string&, const std::string&) override {
    return Unused();
  }

  absl::StatusOr<int64_t> AddMemory(const std::string& tenant, const MemoryRecord& memory) override {
    absl::MutexLock lock(&mu_);
    memories_.push_back(memory);
    memories_.back().tenant = tenant;
    memories_.back().id = static_cast<int64_t>(memories_.size());
    return memories_.back().id;
  }
  absl::Status ReplaceCharacterMemories(const std::string&, const std::string&,
                                        const std::vector<MemoryRecord>&) override {
    return Unused();
  }
  absl::StatusOr<std::vector<MemoryRecord>> ListCharacterMemories(const std::string&, const std::string&) override {
    return Unused();
  }
  absl::StatusOr<std::vector<MemoryRecord>> ListMemories() override { return std::vector<MemoryRecord>{}; }
  absl::StatusOr<std::vector<MemoryRecord>> ListSessionMemories(const std::string&, const std::string&) override {
    return Unused();
  }

  std::vector<TurnRecord> turns() {
    absl::MutexLock lock(&mu_);
    return turns_;
  }
  std::vector<MemoryRecord> memories() {
    absl::MutexLock lock(&mu_);
    return memories_;
  }
  std::string setup_json(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return sessions_[id].setup_json;
  }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used by these tests"); }

  absl::Mutex mu_;
  std::map<std::string, SessionRecord> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<TurnRecord> turns_ ABSL_GUARDED_BY(mu_);
  std::vector<MemoryRecord> memories_ ABSL_GUARDED_BY(mu_);
};

// Every text gets the same unit vector: these tests check what is remembered, not recall.
class FakeEmbedder final : public TextEmbedder {
 public:
  int dim() const override { return 4; }
  absl::StatusOr<std::vector<float>> Embed(std::string_view) const override {
    return std::vector<float>{1, 0, 0, 0};
  }
};

Session InlineSession(SessionStore& sessions) {
  absl::StatusOr<Session> session = sessions.Create("", Character{"Bob", "Be brief."});
  EXPECT_TRUE(session.ok()) << session.status();
  return *session;
}

TurnPlan PlanWithPrompt(std::vector<TokenId> prompt) {
  TurnPlan plan;
  plan.prompt = std::move(prompt);
  return plan;
}

TEST(TurnCommitTest, PendingTurnTakesTheSnapshotVersionAndThePlan) {
  Session session;
  session.id = "s1";
  session.history = {{"assistant", "Ahoy."}, {"user", "Hi"}, {"assistant", "Hello"}};
  TurnPlan plan = PlanWithPrompt({5, 6, 7});
  plan.context = "[memories]";
  plan.character_version = 42;
  plan.new_summary = "They met.";
  plan.new_summarized_turns = 1;

  const PendingTurn turn = PendingTurnFor(session, "Where to?", plan);
  EXPECT_EQ(turn.session_id, "s1");
  EXPECT_EQ(turn.base_version, 3u);
  EXPECT_EQ(turn.user_message, "Where to?");
  EXPECT_EQ(turn.context, "[memories]");
  EXPECT_EQ(turn.prompt, (std::vector<TokenId>{5, 6, 7}));
  EXPECT_EQ(turn.character_version, 42);
  EXPECT_EQ(turn.new_summary, "They met.");
  EXPECT_EQ(turn.new_summarized_turns, 1);
  EXPECT_FALSE(turn.remember.has_value());
}

TEST(TurnCommitTest, TurnMemoryCarriesTheSessionsKeysNamesAndTime) {
  Session session;
  session.tenant = "acme";
  session.id = "s1";
  session.character_id = "c1";
  session.num_turns = 4;
  session.setup.user_name = "Ash";
  session.setup.user_id = "u7";
  session.setup.point_in_time = StoryTime{12, "spring"};
  StoredCharacter character;
  character.profile.name = "Mara Vell";
  character.profile.nickname = "Mara";
  const EmotionVector joy = {9, 5, 1, 1, 1, 1, 1, 5};

  const TurnMemoryInput memory = TurnMemoryFor(session, character, "Hello", joy);
  EXPECT_EQ(memory.keys.tenant, "acme");
  EXPECT_EQ(memory.keys.session_id, "s1");
  EXPECT_EQ(memory.keys.character_id, "c1");
  EXPECT_EQ(memory.keys.user_id, "u7");
  EXPECT_EQ(memory.turn_index, 4);
  EXPECT_EQ(memory.user_text, "Hello");
  EXPECT_EQ(memory.reply_text, "");  // filled in at commit
  EXPECT_EQ(memory.user_name, "Ash");
  EXPECT_EQ(memory.character_name, "Mara");  // {{char}}: the nickname
  EXPECT_EQ(memory.story_time, 12);
  EXPECT_EQ(memory.emotion, joy);
}

// A reply that ended at end of turn or at max_tokens: the prompt and the reply, token for
// token, are the next turn's context.
TEST(TurnCommitTest, EndOfTurnAndLengthKeepPromptAndReplyTokens) {
  for (FinishReason reason : {FinishReason::kEos, FinishReason::kLength}) {
    SessionStore sessions;
    const Session session = InlineSession(sessions);
    ASSERT_TRUE(CommitTurn(sessions, nullptr, PendingTurnFor(session, "Hi", PlanWithPrompt({1, 2, 3})),
                           "Hello!", {8, 9}, reason)
                    .ok());
    absl::StatusOr<Session> after = sessions.Get("", session.id);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->context_tokens, (std::vector<TokenId>{1, 2, 3, 8, 9})) << FinishReasonName(reason);
    ASSERT_EQ(after->history.size(), 2u);
    EXPECT_EQ(after->history[0].role, "user");
    EXPECT_EQ(after->history[0].content, "Hi");
    EXPECT_EQ(after->history[1].role, "assistant");
    EXPECT_EQ(after->history[1].content, "Hello!");
    EXPECT_EQ(after->num_turns, 1);
  }
}

// After a stop string the tokens hold text the reply does not: the next turn renders the
// text history, so the previous turn's tokens are dropped too.
TEST(TurnCommitTest, StopStringClearsTheContextTokens) {
  SessionStore sessions;
  const Session first = InlineSession(sessions);
  ASSERT_TRUE(CommitTurn(sessions, nullptr, PendingTurnFor(first, "Hi", PlanWithPrompt({1, 2})), "Hello!",
                         {3}, FinishReason::kEos)
                  .ok());
  absl::StatusOr<Session> second = sessions.Get("", first.id);
  ASSERT_TRUE(second.ok());
  ASSERT_FALSE(second->context_tokens.empty());
  ASSERT_TRUE(CommitTurn(sessions, nullptr, PendingTurnFor(*second, "Bye", PlanWithPrompt({1, 2, 3, 4})),
                         "See you.", {5}, FinishReason::kStop)
                  .ok());
  absl::StatusOr<Session> after = sessions.Get("", first.id);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->context_tokens.empty());
  ASSERT_EQ(after->history.size(), 4u);
  EXPECT_EQ(after->history[3].content, "See you.");
}

// Two turns planned from the same snapshot: the second to finish is refused and leaves the
// session as it was and nothing to remember.
TEST(TurnCommitTest, TurnFromAStaleSnapshotIsAbortedWithoutSideEffects) {
  FakeStore store;
  FakeEmbedder embedder;
  MemoryService memory(&store, &embedder, nullptr, MemoryServiceOptions{});
  ASSERT_TRUE(memory.Load().ok());
  SessionStore sessions;
  const Session session = InlineSession(sessions);
  PendingTurn first = PendingTurnFor(session, "One", PlanWithPrompt({1}));
  PendingTurn second = PendingTurnFor(session, "Two", PlanWithPrompt({1}));
  second.remember = TurnMemoryInput{.keys = {.session_id = session.id}, .user_text = "Two"};

  ASSERT_TRUE(CommitTurn(sessions, &memory, std::move(first), "First.", {2}, FinishReason::kEos).ok());
  const absl::Status stale = CommitTurn(sessions, &memory, std::move(second), "Second.", {3}, FinishReason::kEos);
  EXPECT_TRUE(absl::IsAborted(stale)) << stale;
  memory.Flush();
  EXPECT_TRUE(store.memories().empty());
  absl::StatusOr<Session> after = sessions.Get("", session.id);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->history.size(), 2u);
  EXPECT_EQ(after->history[1].content, "First.");
  EXPECT_EQ(after->context_tokens, (std::vector<TokenId>{1, 2}));
}

// A turn of a deleted session is refused, summary or not, and sets nothing.
TEST(TurnCommitTest, DeletedSessionIsNotFound) {
  SessionStore sessions;
  const Session session = InlineSession(sessions);
  ASSERT_TRUE(sessions.Delete("", session.id).ok());
  PendingTurn turn = PendingTurnFor(session, "Hi", PlanWithPrompt({1}));
  turn.new_summary = "They met.";
  turn.new_summarized_turns = 1;
  EXPECT_TRUE(absl::IsNotFound(CommitTurn(sessions, nullptr, std::move(turn), "Hello", {}, FinishReason::kEos)));
  EXPECT_TRUE(absl::IsNotFound(
      CommitTurn(sessions, nullptr, PendingTurnFor(session, "Hi", PlanWithPrompt({1})), "Hello", {},
                 FinishReason::kEos)));
}

TEST(TurnCommitTest, FoldedSummaryIsSetWithTheTurn) {
  SessionStore sessions;
  const Session session = InlineSession(sessions);
  PendingTurn turn = PendingTurnFor(session, "Hi", PlanWithPrompt({1}));
  turn.new_summary = "They met at the harbour.";
  turn.new_summarized_turns = 3;
  ASSERT_TRUE(CommitTurn(sessions, nullptr, std::move(turn), "Hello", {2}, FinishReason::kEos).ok());
  absl::StatusOr<Session> after = sessions.Get("", session.id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->summary, "They met at the harbour.");
  EXPECT_EQ(after->summarized_turns, 3);
  EXPECT_EQ(after->history.size(), 2u);
}

// A stored character's turn: the summary and the turn (with its context) reach the Store in one
// AppendTurn, and the turn is remembered with its reply.
TEST(TurnCommitTest, DurableTurnIsStoredThenRemembered) {
  FakeStore store;
  FakeEmbedder embedder;
  MemoryService memory(&store, &embedder, nullptr, MemoryServiceOptions{});
  ASSERT_TRUE(memory.Load().ok());
  SessionStore sessions(SessionStoreOptions{}, &store);
  SessionSetup setup;
  setup.user_name = "Ash";
  setup.point_in_time = StoryTime{3, "dawn"};
  absl::StatusOr<Session> session = sessions.CreateDurable("acme", "c1", "Mara", setup, "Ahoy.");
  ASSERT_TRUE(session.ok()) << session.status();
  StoredCharacter character;
  character.tenant = "acme";
  character.id = "c1";
  character.profile.name = "Mara";
  TurnPlan plan = PlanWithPrompt({1, 2});
  plan.context = "[Mara remembers the reef]";
  plan.character_version = 7;
  plan.new_summary = "Short.";
  plan.new_summarized_turns = 1;
  const EmotionVector calm = {5, 6, 1, 1, 1, 1, 1, 4};
  PendingTurn turn = PendingTurnFor(*session, "Where to?", plan);
  turn.remember = TurnMemoryFor(*session, character, "Where to?", calm);

  ASSERT_TRUE(CommitTurn(sessions, &memory, std::move(turn), "North.", {3}, FinishReason::kStop).ok());
  // The turn is durable when CommitTurn returns.
  const std::vector<TurnRecord> turns = store.turns();
  ASSERT_EQ(turns.size(), 1u);
  EXPECT_EQ(turns[0].turn_index, 0);
  EXPECT_EQ(turns[0].user_text, "Where to?");
  EXPECT_EQ(turns[0].context_text, "[Mara remembers the reef]");
  EXPECT_EQ(turns[0].reply_text, "North.");
  EXPECT_NE(store.setup_json(session->id).find("Short."), std::string::npos);
  absl::StatusOr<Session> after = sessions.Get("acme", session->id);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->history.size(), 4u);  // greeting, user, context, reply
  EXPECT_EQ(after->history[2].role, "system");
  EXPECT_EQ(after->character_version, 7);
  EXPECT_TRUE(after->context_tokens.empty());  // stopped on a stop string

  memory.Flush();
  const std::vector<MemoryRecord> memories = store.memories();
  ASSERT_EQ(memories.size(), 1u);
  EXPECT_EQ(memories[0].tenant, "acme");  // the session's tenant's, like the turn
  EXPECT_EQ(memories[0].text, "Ash: Where to?\nMara: North.");
  EXPECT_EQ(memories[0].session_id, session->id);
  EXPECT_EQ(memories[0].turn_index, 0);
  EXPECT_EQ(memories[0].story_time, 3);
  EXPECT_EQ(memories[0].emotion, calm);
}

// Without a memory service the turn is still committed; the memory is simply not kept.
TEST(TurnCommitTest, NoMemoryServiceStillCommits) {
  SessionStore sessions;
  const Session session = InlineSession(sessions);
  PendingTurn turn = PendingTurnFor(session, "Hi", PlanWithPrompt({1}));
  turn.remember = TurnMemoryInput{.keys = {.session_id = session.id}, .user_text = "Hi"};
  ASSERT_TRUE(CommitTurn(sessions, nullptr, std::move(turn), "Hello", {2}, FinishReason::kEos).ok());
  absl::StatusOr<Session> after = sessions.Get("", session.id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->num_turns, 1);
}

}  // namespace
}  // namespace troupe
