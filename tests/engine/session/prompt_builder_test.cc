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
  EXPECT_EQ(prompt.text.Flat(),
            "Mira is a travelling bard.\n\n"
            "User: Who are you?\n"
            "Mira: A bard.\n"
            "User: Sing!\n"
            "Mira:");
  EXPECT_EQ(prompt.stop, std::vector<std::string>{"\nUser:"});
}

TEST(PromptBuilderTest, RawTranscriptWithoutSystemPromptOrHistory) {
  const ChatPrompt prompt = BuildChatPrompt(ChatFamily::kRaw, Character{"Mira", ""}, {}, "Hi");
  EXPECT_EQ(prompt.text.Flat(), "User: Hi\nMira:");
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
  const std::string text = prompt.text.Flat();
  const size_t system = text.find("You are Mira.");
  const size_t first = text.find("Who are you?");
  const size_t reply = text.find("A bard.");
  const size_t message = text.find("Sing!");
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

TEST(PromptBuilderTest, ChatMlContinuationFollowsTheReply) {
  const PromptText continuation =
      BuildChatContinuation(ChatFamily::kChatMl, Character{"Mira", "You are Mira."}, "Sing!");
  EXPECT_EQ(continuation.Flat(),
            "<|im_end|>\n<|im_start|>user\nSing!<|im_end|>\n<|im_start|>assistant\n");
  // Only the message is client text.
  const std::vector<PromptText::Segment> want = {
      {"<|im_end|>\n<|im_start|>user\n", true}, {"Sing!", false}, {"<|im_end|>\n<|im_start|>assistant\n", true}};
  EXPECT_EQ(continuation.segments(), want);
  EXPECT_TRUE(BuildChatContinuation(ChatFamily::kRaw, Character{"Mira", ""}, "Sing!").empty());
}

// Base-model transcripts have no markers: all of the text is client text.
TEST(PromptBuilderTest, RawTranscriptIsAllClientText) {
  const ChatPrompt prompt = BuildChatPrompt(ChatFamily::kRaw, Character{"Mira", "Be kind."}, kHistory, "Hi");
  ASSERT_EQ(prompt.text.segments().size(), 1u);
  EXPECT_FALSE(prompt.text.segments()[0].is_template);
}

// The append-only rule the prefix cache relies on: for every chat family, the next turn's full
// render is this turn's render, the reply, and the continuation, character for character. The
// Llama-2 writes "[/INST] reply": there the space is the start of the model's reply (its first
// token carries it), so it belongs to the reply here.
TEST(PromptBuilderTest, EveryFamilyRendersTurnsAppendOnly) {
  const Character mira{"Mira", "You are Mira."};
  for (ChatFamily family : {ChatFamily::kChatMl, ChatFamily::kLlama3, ChatFamily::kLlama2,
                            ChatFamily::kMistral, ChatFamily::kGemma, ChatFamily::kPhi3}) {
    SCOPED_TRACE(ChatFamilyName(family));
    const bool inst = family == ChatFamily::kLlama2;
    const std::string turn1 = BuildChatPrompt(family, mira, kHistory, "Sing!").text.Flat();
    std::vector<ChatMessage> history = kHistory;
    history.push_back({"user", "Sing!"});
    history.push_back({"assistant", "La la la."});
    const std::string turn2 = BuildChatPrompt(family, mira, history, "Again!").text.Flat();
    EXPECT_EQ(turn2, turn1 + (inst ? " " : "") + "La la la." + BuildChatContinuation(family, mira, "Again!").Flat());
  }
}

TEST(PromptBuilderTest, AReplyPrefixStartsEveryAssistantMessageAndTheNewReply) {
  const std::vector<ChatMessage> messages = {{"system", "You are the keeper."},
                                             {"assistant", "Welcome, traveller."},
                                             {"user", "Hello!"}};
  const ChatPrompt prompt = BuildMessagesPrompt(ChatFamily::kChatMl, "Keeper", messages, "Keeper:");
  EXPECT_EQ(prompt.text.Flat(),
            "<|im_start|>system\nYou are the keeper.<|im_end|>\n"
            "<|im_start|>assistant\nKeeper: Welcome, traveller.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\nKeeper:");
  // The prefix is card text: never a template marker.
  EXPECT_FALSE(prompt.text.segments().back().is_template);
  EXPECT_EQ(prompt.text.segments().back().text.substr(prompt.text.segments().back().text.size() - 7), "Keeper:");

  // The continuation after a reply ends the same way, so appending equals a full render.
  const PromptText continuation = BuildMessagesContinuation(ChatFamily::kChatMl, {{"user", "Again!"}}, "Keeper:");
  EXPECT_EQ(continuation.Flat(), "<|im_end|>\n<|im_start|>user\nAgain!<|im_end|>\n<|im_start|>assistant\nKeeper:");
  std::vector<ChatMessage> next = messages;
  next.push_back({"assistant", "Hi."});
  next.push_back({"user", "Again!"});
  const std::string full = BuildMessagesPrompt(ChatFamily::kChatMl, "Keeper", next, "Keeper:").text.Flat();
  const std::string appended = prompt.text.Flat() + " Hi." + continuation.Flat();
  EXPECT_EQ(full, appended);

  // Without a prefix nothing changes; raw transcripts end with the name already.
  EXPECT_EQ(BuildMessagesPrompt(ChatFamily::kChatMl, "Keeper", messages).text,
            RenderChat(ChatFamily::kChatMl, messages, true));
  EXPECT_EQ(BuildMessagesPrompt(ChatFamily::kRaw, "Keeper", messages, "Keeper:").text.Flat(),
            BuildMessagesPrompt(ChatFamily::kRaw, "Keeper", messages).text.Flat());
}

TEST(PromptBuilderTest, TheUsersLineIsAStopString) {
  EXPECT_EQ(UserLineStops("Robin"), std::vector<std::string>{"\nRobin:"});
  EXPECT_EQ(UserLineStops(""), std::vector<std::string>{"\nUser:"});
  EXPECT_EQ(UserLineStops(std::string(254, 'a')).size(), 1u);  // 256 bytes with "\n" and ":"
  EXPECT_TRUE(UserLineStops(std::string(255, 'a')).empty());
}

}  // namespace
}  // namespace troupe
