// Plans one chat turn of a stored character's session: recalls memories, activates lore,
// builds the turn's context and the prompt tokens (docs/characters.md, "A turn"). Runs on the
// server's preparation workers; thread-safe (reads only what it is given; MemoryService and
// MemoryRater are thread-safe).
//
// The prompt is append-only across turns: when the session still holds the previous turn's
// tokens (and the character has not changed since), the new prompt is those tokens plus the
// continuation (the new message and context), so the prefix cache serves the whole history.
// Otherwise the prompt is rendered in full; if it does not fit the context, the example
// dialogues are dropped first, then the oldest turns are folded into the session's running
// summary (shown in their place), half of the remaining turns at a time; without a summarizer
// they are dropped.
//
// Inline sessions (a name and a system prompt, no stored character) get PlanInlineTurn: the
// same append-only prompt without memory, lore or shortening.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/character/character_registry.h"
#include "engine/character/lorebook.h"
#include "engine/memory/memory_service.h"
#include "engine/session/character_prompt.h"
#include "engine/session/session_store.h"
#include "engine/tokenizer/tokenizer.h"

namespace troupe {

enum class QueryEmotionSource { kSessionMood, kMessage, kExplicit };

struct TurnMemoryOptions {
  bool enabled = true;  // false: no recall for this turn (the turn is still remembered)
  RetrievalOptions retrieval;
  QueryEmotionSource emotion_source = QueryEmotionSource::kSessionMood;
  EmotionVector query_emotion = kNeutralEmotion;  // with kExplicit
};

struct TurnPlannerDeps {
  const Tokenizer* tokenizer = nullptr;
  ChatFamily family = ChatFamily::kRaw;
  int max_prompt_tokens = 0;           // prompts longer than this are shortened (see above)
  MemoryService* memory = nullptr;     // null: no memory
  MemoryRater* rater = nullptr;        // for kMessage; null: kMessage falls back to the mood
  CharacterPromptOptions prompt_options;
  // Folds turns into a summary: (the summary so far, the turns' messages) -> the new summary.
  // Null: overflowing turns are dropped instead.
  std::function<absl::StatusOr<std::string>(const std::string& summary,
                                            const std::vector<ChatMessage>& turns)>
      summarize;
  LoreOptions lore_options;            // point_in_time and count_tokens are filled per turn
};

struct TurnPlan {
  std::vector<TokenId> prompt;
  std::vector<std::string> stop;    // stop strings the rendering needs (raw transcripts)
  std::string context;              // the turn's system message ("" = none)
  std::vector<RecalledUnit> memories;
  std::vector<ActivatedLore> lore;  // triggered entries only (constant ones are in the preamble)
  int lore_entries_skipped = 0;     // entries the lorebook scan budget left unsearched
  int64_t character_version = 0;
  bool rendered_in_full = false;    // false: previous tokens + continuation
  // Set when this turn folded more turns into the summary: the session's new running summary.
  std::optional<std::string> new_summary;
  int new_summarized_turns = 0;
};

[[nodiscard]] absl::StatusOr<TurnPlan> PlanTurn(const TurnPlannerDeps& deps, const Session& session,
                                                const StoredCharacter& character,
                                                const std::string& message,
                                                const TurnMemoryOptions& memory_options);

// A turn of an inline session. When the session holds the previous turn's tokens and `family`
// has a continuation (not kRaw), the prompt is those tokens plus BuildChatContinuation encoded
// without BOS; otherwise BuildChatPrompt renders the whole history (BOS as the tokenizer
// wants) and its stop strings go into `stop`. Only prompt, stop and rendered_in_full are set.
// Only the template's markers become special tokens; the name, system prompt, history and
// message are plain text (Tokenizer::EncodePrompt).
TurnPlan PlanInlineTurn(const Tokenizer& tokenizer, ChatFamily family, const Session& session,
                        const std::string& message);

}  // namespace troupe
