#include "engine/session/turn_planner.h"

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
    deps.max_prompt_tokens = max_prompt_tokens;
    return deps;
  }

  std::string Text(const TurnPlan& plan) const { return tokenizer_->Decode(plan.prompt); }

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

// Over the limit: examples go first, then the oldest half of the turns is folded into the summary.
TEST_F(TurnPlannerTest, DropsExamplesThenFoldsTheOldestTurnsIntoTheSummary) {
  const Session session = SessionWithTurns(8);
  auto full = PlanTurn(Deps(0), session, Character(), "Hello again.", {});
  ASSERT_TRUE(full.ok());
  const int full_size = static_cast<int>(full->prompt.size());

  std::vector<int> folded_sizes;
  TurnPlannerDeps deps = Deps(full_size - 80);  // examples alone do not make room
  deps.summarize = [&](const std::string& summary, const std::vector<ChatMessage>& turns) {
    folded_sizes.push_back(static_cast<int>(turns.size()));
    return absl::StatusOr<std::string>(summary + "[" + std::to_string(turns.size() / 2) + " turns]");
  };
  auto plan = PlanTurn(deps, session, Character(), "Hello again.", {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_LE(static_cast<int>(plan->prompt.size()), full_size - 80);
  ASSERT_EQ(folded_sizes, std::vector<int>({9}));  // the greeting, then half of 8 turns (user + reply)
  ASSERT_TRUE(plan->new_summary.has_value());
  EXPECT_EQ(*plan->new_summary, "[4 turns]");
  EXPECT_EQ(plan->new_summarized_turns, 4);
  const std::string text = Text(*plan);
  EXPECT_EQ(text.find("North, always north"), std::string::npos) << "examples dropped first";
  EXPECT_NE(text.find("Summary of the conversation so far: [4 turns]"), std::string::npos);
  EXPECT_EQ(text.find("Turn 3:"), std::string::npos);
  EXPECT_NE(text.find("Turn 4:"), std::string::npos);

  // The next turn starts from the stored summary: no new fold while it fits.
  Session next = session;
  next.summary = *plan->new_summary;
  next.summarized_turns = plan->new_summarized_turns;
  folded_sizes.clear();
  auto again = PlanTurn(deps, next, Character(), "Hello again.", {});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(folded_sizes.empty());
  EXPECT_FALSE(again->new_summary.has_value());
  EXPECT_NE(Text(*again).find("[4 turns]"), std::string::npos);
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
  EXPECT_EQ(full.stop, rendered.stop);
  EXPECT_NE(Text(full).find("You are Mira, a bard."), std::string::npos);
  EXPECT_NE(Text(full).find("Well met."), std::string::npos);

  session.context_tokens = {1, 2, 3};
  const TurnPlan next = PlanInlineTurn(*tokenizer_, ChatFamily::kChatMl, session, "Sing.");
  EXPECT_FALSE(next.rendered_in_full);
  EXPECT_TRUE(next.stop.empty());
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
