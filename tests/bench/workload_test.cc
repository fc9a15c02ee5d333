// troupe-bench's conversations: the seeded synthetic generator and the JSONL format.
#include "bench/load/workload.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe::load {
namespace {

TEST(WorkloadTest, SyntheticConversationsAreDeterministicAndShareCharacters) {
  const SyntheticOptions options{.num_conversations = 5, .num_characters = 2, .num_turns = 3,
                                 .character_words = 50, .user_words = 7, .max_tokens = 9, .seed = 42};
  const std::vector<Conversation> a = MakeSyntheticConversations(options);
  const std::vector<Conversation> b = MakeSyntheticConversations(options);
  ASSERT_EQ(a.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].character, b[i].character);
    ASSERT_EQ(a[i].turns.size(), 3u);
    for (size_t t = 0; t < 3; ++t) {
      EXPECT_EQ(a[i].turns[t].user, b[i].turns[t].user);
      EXPECT_EQ(a[i].turns[t].max_tokens, 9);
    }
  }
  // Dealt round-robin over two characters: 0, 2, 4 share one prompt, 1 and 3 the other.
  EXPECT_EQ(a[0].character, a[2].character);
  EXPECT_EQ(a[0].character, a[4].character);
  EXPECT_EQ(a[1].character, a[3].character);
  EXPECT_NE(a[0].character, a[1].character);
  EXPECT_NE(a[0].turns[0].user, a[1].turns[0].user);
  // 7 words: 6 spaces.
  EXPECT_EQ(std::count(a[0].turns[0].user.begin(), a[0].turns[0].user.end(), ' '), 6);
  EXPECT_NE(MakeSyntheticConversations({.seed = 43})[0].turns[0].user,
            MakeSyntheticConversations({.seed = 42})[0].turns[0].user);
}

TEST(WorkloadTest, JsonlRoundTrips) {
  const std::vector<Conversation> conversations = MakeSyntheticConversations(
      {.num_conversations = 3, .num_characters = 1, .num_turns = 2, .character_words = 5});
  const std::string path = ::testing::TempDir() + "/conversations.jsonl";
  ASSERT_TRUE(WriteConversationsJsonl(path, conversations).ok());
  absl::StatusOr<std::vector<Conversation>> read = ReadConversationsJsonl(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*read)[i].id, conversations[i].id);
    EXPECT_EQ((*read)[i].character, conversations[i].character);
    ASSERT_EQ((*read)[i].turns.size(), 2u);
    EXPECT_EQ((*read)[i].turns[1].user, conversations[i].turns[1].user);
    EXPECT_EQ((*read)[i].turns[1].max_tokens, conversations[i].turns[1].max_tokens);
  }
}

TEST(WorkloadTest, ParsesOptionalFieldsAndSkipsBlankLines) {
  absl::StatusOr<std::vector<Conversation>> parsed = ParseConversationsJsonl(
      "{\"turns\": [{\"user\": \"Hi\"}]}\n\n{\"id\": \"x\", \"character\": \"You are X.\", "
      "\"turns\": [{\"user\": \"A\", \"max_tokens\": 5}, {\"user\": \"B\"}]}\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].id, "line1");
  EXPECT_EQ((*parsed)[0].character, "");
  EXPECT_EQ((*parsed)[0].turns[0].max_tokens, 0);
  EXPECT_EQ((*parsed)[1].id, "x");
  EXPECT_EQ((*parsed)[1].turns[0].max_tokens, 5);
}

TEST(WorkloadTest, MalformedLinesNameTheLineAndField) {
  struct Case {
    std::string text, message;
  };
  for (const Case& c : std::vector<Case>{
           {"{\"turns\": [{\"user\": \"a\"}]}\nnot json\n", "line 2: not a JSON object"},
           {"{\"turns\": []}", "line 1: \"turns\" must be a non-empty array"},
           {"{\"turns\": [{\"user\": 3}]}", "line 1: every turn needs a non-empty string \"user\""},
           {"{\"turns\": [{\"user\": \"a\", \"max_tokens\": -1}]}",
            "line 1: \"max_tokens\" must be a positive integer"},
           {"{\"character\": 1, \"turns\": [{\"user\": \"a\"}]}",
            "line 1: \"character\" must be a string"},
           {"\n", "no conversations in the input"}}) {
    absl::StatusOr<std::vector<Conversation>> parsed = ParseConversationsJsonl(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), c.message);
  }
  EXPECT_EQ(ReadConversationsJsonl("/nonexistent/x.jsonl").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace troupe::load
