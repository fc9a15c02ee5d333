// The chat messages of a role-play turn, built from a character profile, the session's setup,
// its history, and what memory and the lorebook recalled for this turn. Ordered for the prefix
// cache (docs/characters.md, "Prompt order"):
//
//   1. system: the static part: system prompt, the profile (description, personality,
//      structured attributes, behaviours), constant lore, example dialogues. Identical for
//      every session of the character with the same user name, so all of them share its KV.
//   2. system: the session's setup: the user's persona, the scenario, the point in story time
//      (omitted when empty).
//   3. assistant: the greeting (first_message or an alternate; omitted for none).
//   4. the history: user, [system: that turn's context], assistant, for every past turn.
//   5. user: the new message.
//   6. system: this turn's context: recalled memories, triggered lore, post-history
//      instructions (omitted when empty).
//
// Every turn's context stays in the history (4), so each turn's prompt extends the previous
// one token for token (append-only; engine/session/prompt_builder.h) and only the new message
// and context are computed. Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/character/character_profile.h"
#include "engine/character/lorebook.h"
#include "engine/memory/emotion.h"
#include "engine/tokenizer/chat_template.h"

namespace troupe {

// What a session adds to its character.
struct SessionSetup {
  std::string user_name = "User";  // replaces {{user}}
  std::string user_persona;
  std::string scenario;  // replaces the character's scenario when not empty
  std::optional<StoryTime> point_in_time;  // memories and lore after it are never used
  EmotionVector initial_mood = kNeutralEmotion;
  int greeting_index = 0;  // 0 = first_message, i > 0 = alternate_greetings[i - 1], -1 = none
  std::string user_id;     // owner of the user x character memories

  bool operator==(const SessionSetup&) const = default;
};

struct CharacterPromptOptions {
  std::string global_system_prompt;  // what a card's {{original}} / empty system_prompt means
  std::string global_post_history;   // the same for post_history_instructions
  bool include_examples = true;      // the first thing dropped when the context overflows
};

// Messages 1-3 above. The first is always present (at least the character's name).
std::vector<ChatMessage> BuildCharacterPreamble(const CharacterProfile& profile,
                                                const SessionSetup& setup,
                                                const CharacterPromptOptions& options);

// "<name>:" for a character whose card writes dialogue as "Name: line" (example dialogues with
// speakers, or a description, personality, scenario, greeting or lore entry holding a
// "{{user}}:" line, any case), "" for others: the reply prefix of BuildMessagesPrompt
// (prompt_builder.h), as SillyTavern starts such a character's reply with its name, so the
// model continues the character's line rather than writing the user's first.
std::string ReplyPrefixFor(const CharacterProfile& profile);

// The greeting message 3 refers to ("" for none or an index out of range), macros substituted.
std::string GreetingFor(const CharacterProfile& profile, const SessionSetup& setup);

// One recalled memory as the turn context shows it.
struct RecalledMemory {
  std::string text;
  std::string when;  // story-time label, or "" when it has none
};

// Message 6: "" when there are no memories, no triggered lore and no post-history instructions.
// Constant lore is in the preamble already, so only triggered entries are listed here.
std::string BuildTurnContext(const CharacterProfile& profile, const SessionSetup& setup,
                             std::span<const RecalledMemory> memories,
                             std::span<const ActivatedLore> lore,
                             const CharacterPromptOptions& options);

// The constant entries of the lorebook that are visible at the setup's point in time (they go
// into the preamble; ActivateLore's budget does not apply to them).
std::vector<const LoreEntry*> ConstantLore(const CharacterProfile& profile, const SessionSetup& setup);

}  // namespace troupe
