// Plans one chat turn of a stored character's session: recalls memories, activates lore,
// builds the turn's context and the prompt tokens (docs/kv_cache.md, "Long conversations";
// docs/memory.md, "In a turn"). Runs on the server's preparation workers; thread-safe (reads only what
// it is given; MemoryService and MemoryRater are thread-safe).
//
// The turn's context (post-history instructions, then triggered lore by priority, then recalled
// memories by rank, each cut to a quarter of the budget) is held to a token budget. Memories of
// turns still in the window (not folded) are not recalled, and a memory already shown in a
// context message the prompt still holds is not shown again.
//
// The prompt is append-only across turns: when the session still holds the previous turn's
// tokens (and the character has not changed since), the new prompt is those tokens plus the
// continuation (the new message and context), so the prefix cache serves the whole history.
// Folding has hysteresis (FoldMarks): only a prompt that would pass the high mark is rendered
// afresh, and then shortened to the low mark at once: the example dialogues are dropped first,
// then the oldest turns are folded into the session's running summary (shown in their place)
// with one summarizer call (without a summarizer they are dropped). That call is usually made
// before: a turn that appends past the pre-fold mark (midway between the marks) asks for the next
// fold's summary to be made in the background (TurnPlan::prefold), and the folding turn takes
// it (Session::pending_summary), summarizing only turns past it, if any. A full render leaves out
// the context messages of past turns. So folds are rare, and every turn between two folds is
// the previous one plus its new tokens.
//
// Inline sessions (a name and a system prompt, no stored character) get PlanInlineTurn: the
// same append-only prompt and marks without memory, lore or summary: the oldest turns are dropped.
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

// When a session's prompt is shortened. A prompt that would pass `high` tokens is rendered
// afresh and shortened until it is at most `low` (or, when the estimate of a fold falls short,
// at most `high`); one that stays at most `high` is left as it is.
struct FoldMarks {
  int max_prompt_tokens = 0;  // the hard limit (the context minus max_tokens); 0 = none, no folds
  int high = 0;               // 0 = max_prompt_tokens
  int low = 0;                // 0 = half of the high mark
  // An appended prompt past this starts the next fold's summary in the background
  // (TurnPlan::prefold); 0 = midway between the low and the high mark.
  int pre = 0;

  int High() const;
  int Low() const;
  int Pre() const;
};

// Marks at fractions of max_prompt_tokens (0 < low_fraction <= high_fraction <= 1).
FoldMarks FoldMarksFor(int max_prompt_tokens, double high_fraction, double low_fraction);

// The server-wide policy of long conversations (troupe-server's --turn-context-tokens,
// --fold-high-water, --fold-low-water).
struct ConversationOptions {
  int context_budget_tokens = 0;  // the turn's context message; 0 = a sixteenth of the context
  double fold_high = 0.9;         // marks, as fractions of the prompt limit (the context minus
  double fold_low = 0.5;          // the turn's max_tokens)

  int ContextBudget(int context_length) const {
    return context_budget_tokens > 0 ? context_budget_tokens : std::max(64, context_length / 16);
  }
};

struct TurnPlannerDeps {
  const Tokenizer* tokenizer = nullptr;
  ChatFamily family = ChatFamily::kRaw;
  FoldMarks fold;
  int context_budget_tokens = 0;       // the turn's context message; 0 = unbounded
  int summary_tokens = 160;            // the length a new summary is planned with
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

// The next fold's summary, to be made in the background (SessionStore::ClaimPendingSummary):
// `summary` (the running summary of the first from_turn turns) updated with `turns`, the
// messages of turns [from_turn, to_turn).
struct PrefoldJob {
  int from_turn = 0;
  int to_turn = 0;
  std::string summary;
  std::vector<ChatMessage> turns;
};

struct TurnPlan {
  std::vector<TokenId> prompt;
  // Stop strings the turn needs besides the caller's: the user's line ("\n<user name>:",
  // UserLineStops), and a raw transcript's speaker lines.
  std::vector<std::string> stop;
  std::string context;              // the turn's system message ("" = none)
  std::vector<RecalledUnit> memories;
  std::vector<ActivatedLore> lore;  // triggered entries only (constant ones are in the preamble)
  int lore_entries_skipped = 0;     // entries the lorebook scan budget left unsearched
  int64_t character_version = 0;
  bool rendered_in_full = false;    // false: previous tokens + continuation
  int context_tokens = 0;           // of `context`
  // Set when this turn folded more turns into the summary (inline sessions: dropped them; the
  // summary stays ""): the session's new running summary and its count of turns.
  std::optional<std::string> new_summary;
  int new_summarized_turns = 0;
  int folded_turns = 0;             // turns this turn folded or dropped
  absl::Duration summary_time;      // spent in the summarizer
  std::optional<absl::Duration> recall_time;  // spent recalling memories (unset: no recall)
  bool summary_was_pending = false; // the fold took Session::pending_summary
  // Set when this turn appended past FoldMarks::Pre and no summary for the next fold is pending.
  std::optional<PrefoldJob> prefold;
};

[[nodiscard]] absl::StatusOr<TurnPlan> PlanTurn(const TurnPlannerDeps& deps, const Session& session,
                                                const StoredCharacter& character,
                                                const std::string& message,
                                                const TurnMemoryOptions& memory_options);

// A turn of an inline session. When the session holds the previous turn's tokens, `family`
// has a continuation (not kRaw) and the result stays within fold.High(), the prompt is those
// tokens plus BuildChatContinuation encoded without BOS; otherwise BuildChatPrompt renders the
// history after the session's dropped turns (Session::summarized_turns; BOS as the tokenizer
// wants) and its stop strings go into `stop`; past the high mark, the oldest turns are dropped
// down to the low mark (new_summary "", new_summarized_turns, folded_turns). A message too long
// even alone is left to the engine's length check. Only the template's markers become special
// tokens; the name, system prompt, history and message are plain text (EncodePrompt).
TurnPlan PlanInlineTurn(const Tokenizer& tokenizer, ChatFamily family, const Session& session,
                        const std::string& message, const FoldMarks& fold = {});

}  // namespace troupe
