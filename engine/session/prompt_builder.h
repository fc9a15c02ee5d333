// Turns a session (character + history) and the user's new message into the prompt text for one
// chat turn. Pure functions; safe from any thread (runs on the server's preparation workers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/session/session_store.h"
#include "engine/tokenizer/chat_template.h"

namespace troupe {

struct ChatPrompt {
  // Template markers (e.g. "<|im_start|>") and client text apart: encode with
  // Tokenizer::EncodePrompt, which keeps client text plain. BOS is not included.
  PromptText text;
  // Stop strings the turn needs besides the caller's, e.g. "\nUser:" for raw transcripts so a
  // base model does not write the user's next line.
  std::vector<std::string> stop;
};

// Chat families render [system prompt (when non-empty), history..., user message] with
// RenderChat and the assistant header. ChatFamily::kRaw (base models) gets a plain transcript,
// all of it client text:
//
//   <system prompt>\n\n            (when non-empty)
//   User: <message>\n
//   <character name>: <reply>\n    (for each past turn)
//   User: <user_message>\n
//   <character name>:
ChatPrompt BuildChatPrompt(ChatFamily family, const Character& character,
                           const std::vector<ChatMessage>& history, std::string_view user_message);

// What follows an assistant reply that ended with the model's end-of-turn token, up to the next
// assistant header: for ChatML "<|im_end|>\n<|im_start|>user\n{message}<|im_end|>\n
// <|im_start|>assistant\n". Appended to the tokens the previous turn ran on, it gives the next
// turn's prompt without re-rendering the history. The text is what RenderChat puts after a
// reply, so a full render and this continuation agree. Empty for ChatFamily::kRaw (its
// replies end on a stop string, not an end-of-turn token).
PromptText BuildChatContinuation(ChatFamily family, const Character& character,
                                 std::string_view user_message);

// The same for a role-play turn of a stored character: `messages` are the preamble
// (character_prompt.h), the history, the user's new message and, when not empty, the turn's
// context, rendered with the assistant header. ChatFamily::kRaw renders a transcript: leading
// system messages as a header, then "User: ", "System: " and "<character_name>: " lines.
//
// `reply_prefix` (for example "Keeper:", see ReplyPrefixFor) starts every assistant message and
// the new reply (after the assistant header, as client text), so a model that learned the
// card's "Name: line" dialogue format continues the character's line instead of opening with
// the user's. "" = none; ignored for ChatFamily::kRaw, whose transcript already ends with
// "<character_name>:".
ChatPrompt BuildMessagesPrompt(ChatFamily family, const std::string& character_name,
                               const std::vector<ChatMessage>& messages, std::string_view reply_prefix = "");

// What follows an assistant reply that ended with the model's end-of-turn token when
// `new_messages` (the user's message, then the turn's context) come next, up to the next
// assistant header: BuildChatContinuation for any messages. Empty for ChatFamily::kRaw.
PromptText BuildMessagesContinuation(ChatFamily family, const std::vector<ChatMessage>& new_messages,
                                     std::string_view reply_prefix = "");

// The stop strings that end a reply where the model starts writing the user's next line
// ("\n<user_name>:", as SillyTavern's names-as-stop-strings), for every family: a reply never
// speaks for the user (docs/characters.md, "The user's lines"). An empty name stands for "User";
// a name too long for a stop string (over 254 bytes) gets none.
std::vector<std::string> UserLineStops(std::string_view user_name);

}  // namespace troupe
