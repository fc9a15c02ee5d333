#include "engine/session/prompt_builder.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

const std::vector<ChatMessage> kHistory = {{"user", "Who are you?"}, {"assistant", "A bard."}};

TEST(PromptBuilderTest, RawTranscriptForBaseModels) {
  const ChatPrompt prompt = BuildChatPrompt(
      ChatFamily::kRaw, Character{"Mira", "Mira is a travelling bard."}, kHistory, "Sing!");
  EXPECT_EQ(prompt.text,
            "Mira is a travelling bard.\n\n"
            "User: Who are you?\n"
            "Mira: A bard.\n"
            "User: Sing!\n"
            "Mira:");
  EXPECT_EQ(prompt.stop, std::vector<std::string>{"\nUser:"});
}

TEST(PromptBuilderTest, RawTranscriptWithoutSystemPromptOrHistory) {
  const ChatPrompt prompt = BuildChatPrompt(ChatFamily::kRaw, Character{"Mira", ""}, {}, "Hi");
  EXPECT_EQ(prompt.text, "User: Hi\nMira:");
}

TEST(PromptBuilderTest, ChatFamiliesRenderSystemHistoryThenMessage) {
  const ChatPrompt prompt = BuildChatPrompt(
      ChatFamily::kChatMl, Character{"Mira", "You are Mira."}, kHistory, "Sing!");
  const std::vector<ChatMessage> expected = {{"system", "You are Mira."},
                                             {"user", "Who are you?"},
                                             {"assistant", "A bard."},
                                             {"user", "Sing!"}};
  EXPECT_EQ(prompt.text, RenderChat(ChatFamily::kChatMl, expected, true));
  EXPECT_TRUE(prompt.stop.empty());
  // The order is visible in the text itself.
  const size_t system = prompt.text.find("You are Mira.");
  const size_t first = prompt.text.find("Who are you?");
  const size_t reply = prompt.text.find("A bard.");
  const size_t message = prompt.text.find("Sing!");
  ASSERT_NE(system, std::string::npos);
  EXPECT_LT(system, first);
  EXPECT_LT(first, reply);
  EXPECT_LT(reply, message);
}

TEST(PromptBuilderTest, EmptySystemPromptIsOmitted) {
  const ChatPrompt prompt =
      BuildChatPrompt(ChatFamily::kChatMl, Character{"Mira", ""}, {}, "Hello");
  EXPECT_EQ(prompt.text, RenderChat(ChatFamily::kChatMl, {{"user", "Hello"}}, true));
}

}  // namespace
}  // namespace troupe
