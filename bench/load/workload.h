// What troupe-bench sends: conversations (a character prompt and the user's turns), made by a
// seeded synthetic generator or read from a JSONL file, one conversation per line:
//
//   {"id": "c0", "character": "You are Mira, ...", "turns": [{"user": "Hello!", "max_tokens": 48}]}
//
// `max_tokens` is optional per turn (the run's default applies). The synthetic generator makes
// `num_characters` character prompts and deals conversations over them round-robin, so that
// sessions of one character share their prompt, as role-play traffic does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe::load {

struct Turn {
  std::string user;
  int max_tokens = 0;  // 0 = the run's default
};

struct Conversation {
  std::string id;
  std::string character;  // the character's system prompt
  std::vector<Turn> turns;
};

struct SyntheticOptions {
  int num_conversations = 16;
  int num_characters = 2;
  int num_turns = 8;
  int character_words = 400;  // words of each character prompt (about one token each)
  int user_words = 30;        // words of each user message
  int max_tokens = 48;        // reply length of every turn
  uint64_t seed = 1;
};

// Deterministic for a given seed: the same options give the same conversations.
std::vector<Conversation> MakeSyntheticConversations(const SyntheticOptions& options);

// kInvalidArgument naming the line and the field for malformed input; kNotFound / kUnavailable
// when the file cannot be read.
absl::StatusOr<std::vector<Conversation>> ReadConversationsJsonl(const std::string& path);
absl::StatusOr<std::vector<Conversation>> ParseConversationsJsonl(const std::string& text);
absl::Status WriteConversationsJsonl(const std::string& path, const std::vector<Conversation>& conversations);

}  // namespace troupe::load
