#include "engine/session/prompt_builder.h"

#include "absl/strings/str_cat.h"
#include "engine/sampler/sampling_params.h"

namespace troupe {
namespace {

// Debian's Abseil has its own absl::string_view, which StrCat takes; std::string_view it does not.
constexpr char kRawUserName[] = "User";

absl::string_view Abseil(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// Continuations render a conversation whose last reply is this sentinel and keep what follows
// it.
constexpr std::string_view kSentinel = "\x01troupe-reply\x01";

// What follows the last sentinel in `rendered`; empty when there is none.
PromptText AfterSentinel(const PromptText& rendered) {
  const size_t at = rendered.Flat().rfind(kSentinel);
  if (at == std::string::npos) return {};
  return rendered.Suffix(at + kSentinel.size());
}

// Base models: every byte of the transcript is plain text.
std::string RenderRawTranscript(const Character& character,
                                const std::vector<ChatMessage>& history,
                                std::string_view user_message) {
  const std::string user_name = kRawUserName;
  const std::string system_name = "System";
  std::string text;
  if (!character.system_prompt.empty()) absl::StrAppend(&text, character.system_prompt, "\n\n");
  for (const ChatMessage& message : history) {
    const std::string& speaker = message.role == "user"     ? user_name
                                 : message.role == "system" ? system_name
                                                            : character.name;
    absl::StrAppend(&text, speaker, ": ", message.content, "\n");
  }
  absl::StrAppend(&text, kRawUserName, ": ",
                  absl::string_view(user_message.data(), user_message.size()), "\n",
                  character.name, ":");
  return text;
}

}  // namespace

ChatPrompt BuildMessagesPrompt(ChatFamily family, const std::string& character_name,
                               const std::vector<ChatMessage>& messages, std::string_view reply_prefix) {
  ChatPrompt prompt;
  if (family != ChatFamily::kRaw) {
    if (reply_prefix.empty()) {
      prompt.text = RenderChat(family, messages, /*add_generation_prompt=*/true);
      return prompt;
    }
    std::vector<ChatMessage> prefixed = messages;
    for (ChatMessage& m : prefixed) {
      if (m.role == "assistant") m.content = absl::StrCat(Abseil(reply_prefix), " ", m.content);
    }
    prompt.text = RenderChat(family, prefixed, /*add_generation_prompt=*/true);
    prompt.text.AddClient(reply_prefix);
    return prompt;
  }
  std::string text;
  size_t i = 0;
  for (; i < messages.size() && messages[i].role == "system"; ++i) {
    absl::StrAppend(&text, messages[i].content, "\n\n");
  }
  for (; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string& speaker = m.role == "user" ? std::string(kRawUserName)
                                 : m.role == "system" ? std::string("System")
                                                      : character_name;
    absl::StrAppend(&text, speaker, ": ", m.content, "\n");
  }
  absl::StrAppend(&text, character_name, ":");
  prompt.text = PromptText::Client(text);
  prompt.stop.push_back(absl::StrCat("\n", kRawUserName, ":"));
  prompt.stop.push_back("\nSystem:");
  return prompt;
}

PromptText BuildMessagesContinuation(ChatFamily family, const std::vector<ChatMessage>& new_messages,
                                     std::string_view reply_prefix) {
  if (family == ChatFamily::kRaw) return {};
  std::vector<ChatMessage> messages = {ChatMessage{"user", "u"},
                                       ChatMessage{"assistant", std::string(kSentinel)}};
  messages.insert(messages.end(), new_messages.begin(), new_messages.end());
  PromptText continuation = AfterSentinel(RenderChat(family, messages, /*add_generation_prompt=*/true));
  if (!continuation.empty()) continuation.AddClient(reply_prefix);
  return continuation;
}

ChatPrompt BuildChatPrompt(ChatFamily family, const Character& character,
                           const std::vector<ChatMessage>& history,
                           std::string_view user_message) {
  ChatPrompt prompt;
  if (family == ChatFamily::kRaw) {
    prompt.text = PromptText::Client(RenderRawTranscript(character, history, user_message));
    prompt.stop.push_back(absl::StrCat("\n", kRawUserName, ":"));
    return prompt;
  }
  std::vector<ChatMessage> messages;
  messages.reserve(history.size() + 2);
  if (!character.system_prompt.empty()) {
    messages.push_back(ChatMessage{"system", character.system_prompt});
  }
  messages.insert(messages.end(), history.begin(), history.end());
  messages.push_back(ChatMessage{"user", std::string(user_message)});
  prompt.text = RenderChat(family, messages, /*add_generation_prompt=*/true);
  return prompt;
}

PromptText BuildChatContinuation(ChatFamily family, const Character& character,
                                 std::string_view user_message) {
  if (family == ChatFamily::kRaw) return {};
  const ChatPrompt prompt =
      BuildChatPrompt(family, character,
                      {ChatMessage{"user", "u"}, ChatMessage{"assistant", std::string(kSentinel)}},
                      user_message);
  return AfterSentinel(prompt.text);
}

std::vector<std::string> UserLineStops(std::string_view user_name) {
  const std::string_view name = user_name.empty() ? std::string_view(kRawUserName) : user_name;
  std::string stop = absl::StrCat("\n", absl::string_view(name.data(), name.size()), ":");
  // A name near the 256-byte cap would make a stop string the engine refuses.
  if (stop.size() > static_cast<size_t>(kMaxStopStringBytes)) return {};
  return {std::move(stop)};
}

}  // namespace troupe
