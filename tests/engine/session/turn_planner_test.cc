#include "engine/session/turn_planner.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "engine/clients/summarizer.h"
#include "engine/formats/gguf.h"
#include "engine/session/prompt_builder.h"
#include "gtest/gtest.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

const std::string kSmol = testing::SmolLmPath();

class TurnPlannerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = GgufFile::Open(kSmol);
    ASSERT_TRUE(file.ok()) << file.status();
    auto tokenizer = Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  static StoredCharacter Character() {
    StoredCharacter c;
    c.id = "c1";
    c.update_time_ms = 7;
    c.profile.name = "Mara";
    c.profile.description = "A sea captain.";
    c.profile.first_message = "Ahoy.";
    ExampleDialogue example;
    example.turns = {{"{{user}}", "Where to?"}, {"{{char}}", "North, always north, past the old reef."}};
    c.profile.example_dialogues = {example};
    return c;
  }

  // A session of n turns, each about 30 tokens.
  static Session SessionWithTurns(int n) {
    Session s;
    s.id = "s1";
    s.character_id = "c1";
    s.setup.user_name = "Ash";
    s.history.push_back({"assistant", "Ahoy."});
    for (int i = 0; i < n; ++i) {
      s.history.push_back({"user", "Turn " + std::to_string(i) + ": tell me about the harbour and the gulls there."});
      s.history.push_back({"assistant", "Reply " + std::to_string(i) + ": the harbour is loud and the gulls steal fish."});
    }
    s.num_turns = n;
    return s;
  }

  TurnPlannerDeps Deps(int max_prompt_tokens) const {
    TurnPlannerDeps deps;
    deps.tokenizer = tokenizer_;
    deps.family = ChatFamily::kChatMl;
    deps.fold.max_prompt_tokens = max_prompt_tokens;  // high mark = the limit, low = half of it
    return deps;
  }

  std::string Text(const TurnPlan& plan) const { return tokenizer_->Decode(plan.prompt); }

  // What SessionStore::AppendTurn keeps of a turn that ran on `plan` and replied `reply`.
  static void AppendTurn(Session& session, const std::string& message, const std::string& reply,
                         const TurnPlan& plan) {
    session.history.push_back({"user", message});
    session.history.push_back({"assistant", reply});
    session.num_turns++;
    session.context_tokens = plan.prompt;
    const std::vector<TokenId> reply_tokens = tokenizer_->Encode(reply, false, false);
    session.context_tokens.insert(session.context_tokens.end(), reply_tokens.begin(), reply_tokens.end());
  }

  static Tokenizer* tokenizer_;
};
Tokenizer* TurnPlannerTest::tokenizer_ = nullptr;

TEST_F(TurnPlannerTest, FitsWithoutShorteningWhenThereIsRoom) {
  auto plan = PlanTurn(Deps(0), SessionWithTurns(6), Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->rendered_in_full);
  EXPECT_FALSE(plan->new_summary.has_value());
  const std::string text = Text(*plan);
  EXPECT_NE(text.find("North, always north"), std::string::npos);
  EXPECT_NE(text.find("Turn 0:"), std::string::npos);
  EXPECT_NE(text.find("Hello again."), std::string::npos);
}

// Past the high mark: examples go first, then as many of the oldest turns as bring the prompt to
// the low mark, with one summarizer call.
TEST_F(TurnPlannerTest, PastTheHighMarkFoldsDownToTheLowMarkWithOneSummary) {
  const Session session = SessionWithTurns(20);
  auto full = PlanTurn(Deps(0), session, Character(), "Hello again.", {});
  ASSERT_TRUE(full.ok());
  const int full_size = static_cast<int>(full->prompt.size());

  std::vector<int> folded_sizes;
  TurnPlannerDeps deps = Deps(full_size - 10);
  deps.fold.low = full_size / 2;
  deps.summarize = [&](const std::string& summary, const std::vector<ChatMessage>& turns) {
    folded_sizes.push_back(static_cast<int>(turns.size()));
    return absl::StatusOr<std::string>(summary + "[" + std::to_string(turns.size() / 2) + " turns]");
  };
  auto plan = PlanTurn(deps, session, Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->rendered_in_full);
  EXPECT_LE(static_cast<int>(plan->prompt.size()), full_size / 2) << "down to the low mark";
  ASSERT_EQ(folded_sizes.size(), 1u) << "one summary per fold";
  ASSERT_TRUE(plan->new_summary.has_value());
  const int folded = plan->new_summarized_turns;
  EXPECT_EQ(plan->folded_turns, folded);
  EXPECT_GE(folded, 8);
  EXPECT_LT(folded, 20);
  EXPECT_EQ(folded_sizes[0], 2 * folded + 1);  // the greeting, then each folded turn's user + reply
  const std::string text = Text(*plan);
  EXPECT_EQ(text.find("North, always north"), std::string::npos) << "examples dropped first";
  EXPECT_NE(text.find("A sea captain."), std::string::npos) << "the preamble stays";
  EXPECT_NE(text.find("Summary of the conversation so far: [" + std::to_string(folded) + " turns]"), std::string::npos);
  EXPECT_EQ(text.find("Turn " + std::to_string(folded - 1) + ":"), std::string::npos);
  EXPECT_NE(text.find("Turn " + std::to_string(folded) + ":"), std::string::npos);
  EXPECT_NE(text.find("Turn 19:"), std::string::npos);

  // The next turn starts from the stored summary: no new fold while it fits.
  Session next = session;
  next.summary = *plan->new_summary;
  next.summarized_turns = plan->new_summarized_turns;
  folded_sizes.clear();
  auto again = PlanTurn(deps, next, Character(), "Hello again.", {});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(folded_sizes.empty());
  EXPECT_FALSE(again->new_summary.has_value());
  EXPECT_NE(Text(*again).find("[" + std::to_string(folded) + " turns]"), std::string::npos);
}

// A full render that stays under the high mark is left as it is: no fold for a prompt that fits.
TEST_F(TurnPlannerTest, UnderTheHighMarkNothingIsFolded) {
  const Session session = SessionWithTurns(8);
  auto full = PlanTurn(Deps(0), session, Character(), "Hello again.", {});
  ASSERT_TRUE(full.ok());
  TurnPlannerDeps deps = Deps(static_cast<int>(full->prompt.size()));
  deps.fold.low = 10;
  deps.summarize = [](const std::string&, const std::vector<ChatMessage>&) -> absl::StatusOr<std::string> {
    ADD_FAILURE() << "no summary under the high mark";
    return "";
  };
  auto plan = PlanTurn(deps, session, Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->prompt, full->prompt);
  EXPECT_EQ(plan->folded_turns, 0);
}

// The next fold's summary is made ahead: a turn that appends past the pre-fold mark asks for
// it (TurnPlan::prefold), and the folding turn takes it instead of calling the summarizer.
TEST_F(TurnPlannerTest, ALongConversationFoldsWithSummariesMadeAhead) {
  TurnPlannerDeps deps = Deps(1200);
  deps.fold = FoldMarksFor(1200, 0.9, 0.5);
  deps.summary_tokens = 40;
  int in_fold = 0;
  deps.summarize = [&](const std::string&, const std::vector<ChatMessage>&) {
    ++in_fold;
    return absl::StatusOr<std::string>("Made in the fold.");
  };
  const StoredCharacter character = Character();
  Session session = SessionWithTurns(0);
  session.character_version = character.update_time_ms;
  int folds = 0, ahead = 0;
  for (int t = 0; t < 80; ++t) {
    const std::string message = "Turn " + std::to_string(t) + ": tell me about the harbour and the gulls there.";
    auto plan = PlanTurn(deps, session, character, message, {});
    ASSERT_TRUE(plan.ok()) << "turn " << t << ": " << plan.status();
    if (plan->prefold) {
      // What the server's background job does (SessionStore::ClaimPendingSummary, then Set).
      ++ahead;
      EXPECT_FALSE(plan->rendered_in_full);
      EXPECT_GE(static_cast<int>(plan->prompt.size()), deps.fold.Pre());
      EXPECT_EQ(plan->prefold->from_turn, session.summarized_turns);
      EXPECT_GT(plan->prefold->to_turn, plan->prefold->from_turn);
      EXPECT_EQ(plan->prefold->turns.size(),
                static_cast<size_t>(2 * (plan->prefold->to_turn - plan->prefold->from_turn) + (plan->prefold->from_turn == 0 ? 1 : 0)))
          << "user and reply of each turn (and the greeting with turn 0)";
      session.pending_summary = PendingSummary{.from_turn = plan->prefold->from_turn,
                                               .to_turn = plan->prefold->to_turn,
                                               .summary = "Made ahead (" + std::to_string(plan->prefold->to_turn) + ")."};
    }
    if (plan->folded_turns > 0) {
      ++folds;
      EXPECT_TRUE(plan->summary_was_pending) << "turn " << t;
      EXPECT_NE(Text(*plan).find("Summary of the conversation so far: Made ahead"), std::string::npos);
      EXPECT_LE(static_cast<int>(plan->prompt.size()), deps.fold.High());
      session.summary = *plan->new_summary;
      session.summarized_turns = plan->new_summarized_turns;
      session.pending_summary.reset();  // SessionStore::SetSummary
    }
    AppendTurn(session, message, "Reply " + std::to_string(t) + ": the harbour is loud and the gulls steal fish.",
               *plan);
  }
  EXPECT_GE(folds, 3);
  EXPECT_GE(ahead, folds) << "one summary made ahead per fold";
  EXPECT_LE(ahead, folds + 1) << "(and one for the fold to come)";
  EXPECT_EQ(in_fold, 0) << "no folding turn waited for the summarizer";
}

// A turn whose append would pass the high mark folds to the low mark even when a fresh render
// (leaner than the tokens held: past contexts left out, replies re-encoded) would fit under the
// high mark: otherwise every following turn would pass it again and render in full again.
TEST_F(TurnPlannerTest, AnAppendPastTheHighMarkFoldsToTheLowMark) {
  const StoredCharacter character = Character();
  Session session = SessionWithTurns(20);
  auto fresh = PlanTurn(Deps(0), session, character, "Hello again.", {});
  ASSERT_TRUE(fresh.ok());
  const int fresh_size = static_cast<int>(fresh->prompt.size());
  session.character_version = character.update_time_ms;
  session.context_tokens = fresh->prompt;  // the tokens held run 300 longer than a fresh render
  session.context_tokens.insert(session.context_tokens.end(), 300, 42);
  TurnPlannerDeps deps = Deps(fresh_size + 200);
  deps.fold.low = fresh_size / 2;
  int summaries = 0;
  deps.summarize = [&](const std::string&, const std::vector<ChatMessage>&) {
    ++summaries;
    return absl::StatusOr<std::string>("Harbour talk.");
  };
  auto plan = PlanTurn(deps, session, character, "Hello again.", {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->rendered_in_full);
  EXPECT_GT(plan->folded_turns, 0);
  EXPECT_EQ(summaries, 1);
  EXPECT_LE(static_cast<int>(plan->prompt.size()), fresh_size / 2);
}

// A conversation that crosses the limit again and again: turns between folds extend the
// previous prompt token for token, folds are few, and every prompt keeps the preamble, the
// summary and the recent turns within the limit.
TEST_F(TurnPlannerTest, ALongConversationFoldsRarelyAndKeepsItsShape) {
  TurnPlannerDeps deps = Deps(1200);
  deps.fold = FoldMarksFor(1200, 0.9, 0.5);
  deps.summary_tokens = 40;
  int summaries = 0;
  deps.summarize = [&](const std::string&, const std::vector<ChatMessage>& turns) {
    ++summaries;
    return absl::StatusOr<std::string>("They talked of the harbour (" + std::to_string(turns.size()) + " messages).");
  };
  const StoredCharacter character = Character();
  Session session = SessionWithTurns(0);
  session.character_version = character.update_time_ms;
  int folds = 0;
  const int kTurns = 80;
  for (int t = 0; t < kTurns; ++t) {
    const std::string message = "Turn " + std::to_string(t) + ": tell me about the harbour and the gulls there.";
    auto plan = PlanTurn(deps, session, character, message, {});
    ASSERT_TRUE(plan.ok()) << "turn " << t << ": " << plan.status();
    ASSERT_LE(static_cast<int>(plan->prompt.size()), 1200) << "turn " << t;
    if (t > 0 && plan->folded_turns == 0) {
      EXPECT_FALSE(plan->rendered_in_full) << "turn " << t << " between folds appends";
      ASSERT_GE(plan->prompt.size(), session.context_tokens.size());
      EXPECT_TRUE(std::equal(session.context_tokens.begin(), session.context_tokens.end(), plan->prompt.begin()))
          << "turn " << t << " extends the previous prompt";
    }
    if (plan->folded_turns > 0) {
      ++folds;
      const std::string text = Text(*plan);
      EXPECT_NE(text.find("A sea captain."), std::string::npos) << "turn " << t;
      EXPECT_NE(text.find("Summary of the conversation so far: They talked"), std::string::npos) << "turn " << t;
      EXPECT_NE(text.find("Turn " + std::to_string(t - 1) + ":"), std::string::npos) << "turn " << t;
      EXPECT_LE(static_cast<int>(plan->prompt.size()), deps.fold.High());
    }
    // What the session stores after the turn (SessionStore::AppendTurn).
    if (plan->new_summary) {
      session.summary = *plan->new_summary;
      session.summarized_turns = plan->new_summarized_turns;
    }
    AppendTurn(session, message, "Reply " + std::to_string(t) + ": the harbour is loud and the gulls steal fish.",
               *plan);
  }
  EXPECT_GE(folds, 3) << "the conversation crossed the limit several times";
  EXPECT_LE(folds * 5, kTurns) << "at most one turn in five folds at these marks";
  EXPECT_EQ(summaries, folds);
}

TEST_F(TurnPlannerTest, WithoutSummarizerOldTurnsAreDroppedAndTooLongFails) {
  const Session session = SessionWithTurns(8);
  auto full = PlanTurn(Deps(0), session, Character(), "Hello again.", {});
  ASSERT_TRUE(full.ok());
  auto plan = PlanTurn(Deps(static_cast<int>(full->prompt.size()) - 80), session, Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Text(*plan).find("Summary of"), std::string::npos);
  EXPECT_EQ(Text(*plan).find("Turn 0:"), std::string::npos);
  auto impossible = PlanTurn(Deps(10), session, Character(), "Hello again.", {});
  EXPECT_EQ(impossible.status().code(), absl::StatusCode::kInvalidArgument);
}

// The turn's context holds to its budget: post-history instructions always, then lore by
// priority; an entry that does not fit is left out, a smaller one of lower priority still goes in.
TEST_F(TurnPlannerTest, TheTurnContextHoldsToItsBudgetByPriority) {
  StoredCharacter character = Character();
  character.profile.post_history_instructions = "Stay in character.";
  Lorebook book;
  const auto entry = [](std::string key, std::string content, int priority) {
    LoreEntry e;
    e.keys = {std::move(key)};
    e.content = std::move(content);
    e.priority = priority;
    return e;
  };
  std::string long_lore = "The reef:";
  for (int i = 0; i < 60; ++i) long_lore += " a long tale of the old reef and its wrecks,";
  book.entries = {entry("harbour", "The harbour is old.", 1), entry("harbour", long_lore, 5),
                  entry("gulls", "Gulls are sacred here.", 9)};
  character.profile.lorebook = book;
  const std::string message = "Tell me of the harbour and the gulls.";

  auto unbounded = PlanTurn(Deps(0), SessionWithTurns(1), character, message, {});
  ASSERT_TRUE(unbounded.ok()) << unbounded.status();
  EXPECT_EQ(unbounded->lore.size(), 3u);
  EXPECT_GT(unbounded->context_tokens, 200);

  TurnPlannerDeps deps = Deps(0);
  deps.context_budget_tokens = 60;
  auto plan = PlanTurn(deps, SessionWithTurns(1), character, message, {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_LE(plan->context_tokens, 60);
  EXPECT_EQ(plan->context_tokens, static_cast<int>(tokenizer_->Encode(plan->context, false, false).size()));
  EXPECT_NE(plan->context.find("Stay in character."), std::string::npos);
  EXPECT_NE(plan->context.find("Gulls are sacred here."), std::string::npos) << "highest priority first";
  EXPECT_EQ(plan->context.find("The reef:"), std::string::npos) << "too long for the budget";
  EXPECT_NE(plan->context.find("The harbour is old."), std::string::npos) << "a smaller entry still fits";
  ASSERT_EQ(plan->lore.size(), 2u);
  EXPECT_EQ(plan->lore[0].content, "The harbour is old.") << "shown in activation order";
}

// A full render leaves the context messages of past turns out (they were shown when those turns
// ran; a continuation keeps them as tokens), so stale memories do not pile up across folds.
TEST_F(TurnPlannerTest, AFullRenderLeavesPastContextsOut) {
  Session session = SessionWithTurns(3);
  session.history.insert(session.history.begin() + 2, ChatMessage{"system", "Mara remembers:\n- an old storm"});
  auto plan = PlanTurn(Deps(0), session, Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->rendered_in_full);
  EXPECT_EQ(Text(*plan).find("an old storm"), std::string::npos);
  EXPECT_NE(Text(*plan).find("Reply 0:"), std::string::npos);
}

// An inline session passes the context limit without an error: the oldest turns are dropped
// down to the low mark, then turns append again until the next drop.
TEST_F(TurnPlannerTest, AnInlineSessionDropsItsOldestTurnsPastTheHighMark) {
  Session session;
  session.character = {"Mira", "You are Mira, a bard."};
  const FoldMarks marks = FoldMarksFor(600, 0.9, 0.5);
  int drops = 0;
  for (int t = 0; t < 60; ++t) {
    const std::string message = "Verse " + std::to_string(t) + ": sing of the harbour, the gulls and the sea.";
    const TurnPlan plan = PlanInlineTurn(*tokenizer_, ChatFamily::kChatMl, session, message, marks);
    ASSERT_LE(static_cast<int>(plan.prompt.size()), marks.High()) << "turn " << t;
    const std::string text = Text(plan);
    EXPECT_NE(text.find("You are Mira, a bard."), std::string::npos) << "turn " << t;
    if (plan.new_summary) {
      ++drops;
      EXPECT_EQ(*plan.new_summary, "");
      EXPECT_GT(plan.new_summarized_turns, session.summarized_turns);
      EXPECT_LE(static_cast<int>(plan.prompt.size()), marks.Low()) << "turn " << t;
      EXPECT_EQ(text.find("Verse " + std::to_string(plan.new_summarized_turns - 1) + ":"), std::string::npos);
      EXPECT_NE(text.find("Verse " + std::to_string(t - 1) + ":"), std::string::npos);
      session.summarized_turns = plan.new_summarized_turns;
    } else if (t > 0) {
      EXPECT_FALSE(plan.rendered_in_full) << "turn " << t;
    }
    const std::string reply = "A verse of the sea, turn " + std::to_string(t) + ".";
    session.history.push_back({"user", message});
    session.history.push_back({"assistant", reply});
    session.context_tokens = plan.prompt;
    const std::vector<TokenId> reply_tokens = tokenizer_->Encode(reply, false, false);
    session.context_tokens.insert(session.context_tokens.end(), reply_tokens.begin(), reply_tokens.end());
  }
  EXPECT_GE(drops, 3);
  EXPECT_LE(drops * 5, 60);
}

// With the previous turn's tokens (same character version), the prompt extends them.
TEST_F(TurnPlannerTest, AppendsToThePreviousTurnsTokens) {
  Session session = SessionWithTurns(2);
  session.context_tokens = {1, 2, 3};
  session.character_version = 7;
  auto plan = PlanTurn(Deps(0), session, Character(), "And then?", {});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->rendered_in_full);
  ASSERT_GT(plan->prompt.size(), 3u);
  EXPECT_EQ(std::vector<TokenId>(plan->prompt.begin(), plan->prompt.begin() + 3), std::vector<TokenId>({1, 2, 3}));
  EXPECT_NE(Text(*plan).find("And then?"), std::string::npos);
  session.character_version = 6;  // the character changed since: render afresh
  auto fresh = PlanTurn(Deps(0), session, Character(), "And then?", {});
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->rendered_in_full);
}

// A card written as "{{user}}: ..." dialogue (Character()'s example dialogue): every reply
// starts after the character's name, rendered in full or appended, and the user's line stops
// it, so the model continues Mara's line and never writes Ash's (issue #15).
TEST_F(TurnPlannerTest, ACardWrittenAsDialogueGetsItsNameAsReplyPrefixAndTheUsersLineAsStop) {
  Session session = SessionWithTurns(2);
  session.character_version = Character().update_time_ms;
  auto full = PlanTurn(Deps(0), session, Character(), "Where to now?", {});
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(full->rendered_in_full);
  const std::string text = Text(*full);  // Decode leaves the special tokens out
  EXPECT_TRUE(absl::EndsWith(text, "assistant\nMara:")) << text.substr(text.size() - 60);
  EXPECT_NE(text.find("assistant\nMara: Reply 1:"), std::string::npos) << "past replies carry it too";
  EXPECT_NE(std::find(full->stop.begin(), full->stop.end(), "\nAsh:"), full->stop.end());

  AppendTurn(session, "Where to now?", "North.", *full);
  auto next = PlanTurn(Deps(0), session, Character(), "Why north?", {});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->rendered_in_full);
  EXPECT_TRUE(absl::EndsWith(Text(*next), "assistant\nMara:"));
  EXPECT_NE(std::find(next->stop.begin(), next->stop.end(), "\nAsh:"), next->stop.end());

  // A character whose card has no dialogue lines: no prefix, the stop all the same.
  StoredCharacter plain = Character();
  plain.profile.example_dialogues.clear();
  auto unprefixed = PlanTurn(Deps(0), SessionWithTurns(2), plain, "Where to now?", {});
  ASSERT_TRUE(unprefixed.ok());
  EXPECT_TRUE(absl::EndsWith(Text(*unprefixed), "assistant\n"));
  EXPECT_NE(std::find(unprefixed->stop.begin(), unprefixed->stop.end(), "\nAsh:"), unprefixed->stop.end());
}

// An inline session: the whole history rendered (with BOS) until the session holds the previous
// turn's tokens, then those tokens and the continuation.
TEST_F(TurnPlannerTest, InlineTurnRendersInFullThenAppendsToThePreviousTokens) {
  Session session;
  session.character = {"Mira", "You are Mira, a bard."};
  session.history = {{"user", "Hello"}, {"assistant", "Well met."}};
  const TurnPlan full = PlanInlineTurn(*tokenizer_, ChatFamily::kChatMl, session, "Sing.");
  EXPECT_TRUE(full.rendered_in_full);
  const ChatPrompt rendered = BuildChatPrompt(ChatFamily::kChatMl, session.character, session.history, "Sing.");
  EXPECT_EQ(full.prompt, tokenizer_->EncodePrompt(rendered.text, tokenizer_->add_bos()));
  EXPECT_EQ(full.stop, std::vector<std::string>{"\nUser:"});  // the (default) user's line
  EXPECT_NE(Text(full).find("You are Mira, a bard."), std::string::npos);
  EXPECT_NE(Text(full).find("Well met."), std::string::npos);

  session.context_tokens = {1, 2, 3};
  const TurnPlan next = PlanInlineTurn(*tokenizer_, ChatFamily::kChatMl, session, "Sing.");
  EXPECT_FALSE(next.rendered_in_full);
  EXPECT_EQ(next.stop, std::vector<std::string>{"\nUser:"});
  std::vector<TokenId> want = {1, 2, 3};
  const std::vector<TokenId> tail = tokenizer_->EncodePrompt(
      BuildChatContinuation(ChatFamily::kChatMl, session.character, "Sing."), /*add_bos=*/false);
  want.insert(want.end(), tail.begin(), tail.end());
  EXPECT_EQ(next.prompt, want);
}

// A raw transcript has no continuation: it is rendered in full, with its stop strings, even
// when the session holds tokens.
TEST_F(TurnPlannerTest, InlineRawTurnIsAlwaysRenderedInFull) {
  Session session;
  session.character = {"Mira", ""};
  session.context_tokens = {1, 2, 3};
  const TurnPlan plan = PlanInlineTurn(*tokenizer_, ChatFamily::kRaw, session, "Sing.");
  EXPECT_TRUE(plan.rendered_in_full);
  EXPECT_FALSE(plan.stop.empty());
  EXPECT_NE(Text(plan).find("User: Sing."), std::string::npos);
  const ChatPrompt rendered = BuildChatPrompt(ChatFamily::kRaw, session.character, session.history, "Sing.");
  EXPECT_EQ(plan.prompt, tokenizer_->EncodePrompt(rendered.text, tokenizer_->add_bos()));
}

TEST(ModelSummarizerTest, SummarizesThroughTheEngine) {
  EngineOptions options;
  options.model_path = kSmol;
  options.num_threads = 2;
  options.kv_cache_bytes = 32ll << 20;
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ModelSummarizer summarizer(engine->get(), {.max_tokens = 40, .max_input_bytes = 16000});
  const std::vector<ChatMessage> turns = {{"user", "My name is Ash and I lost my compass."},
                                          {"assistant", "Then we search the deck, Ash."}};
  const std::string prompt = summarizer.PromptFor("They met at the harbour.", turns, "Mara", "Ash").Flat();
  EXPECT_NE(prompt.find("Summary so far: They met at the harbour."), std::string::npos);
  EXPECT_NE(prompt.find("Ash: My name is Ash"), std::string::npos);
  EXPECT_NE(prompt.find("Mara: Then we search"), std::string::npos);
  auto summary = summarizer.Summarize("They met at the harbour.", turns, "Mara", "Ash", 0);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(summary->empty());
}

}  // namespace
}  // namespace troupe
