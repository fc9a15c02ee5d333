#include "engine/session/turn_planner.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>

#include "common/log.h"
#include "common/status_macros.h"
#include "engine/character/character_card.h"
#include "engine/session/prompt_builder.h"

namespace troupe {
namespace {

// How many recent messages (history + the new one) lore keys are scanned in, at most.
constexpr size_t kMaxLoreScan = 64;
// Template tokens around one message (role header, end of turn), for planning a fold.
constexpr int kMessageOverheadTokens = 6;
// Ends a memory text cut to fit the context budget.
constexpr char kCutMark[] = "…";

std::vector<ChatMessage> NewMessages(const std::string& message, const std::string& context) {
  std::vector<ChatMessage> out = {ChatMessage{"user", message}};
  if (!context.empty()) out.push_back(ChatMessage{"system", context});
  return out;
}

// The history split into turns: index i is where turn i starts (the greeting, if any, is
// before the first turn).
std::vector<size_t> TurnStarts(const std::vector<ChatMessage>& history) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].role == "user") starts.push_back(i);
  }
  return starts;
}

// Where turn `turn` starts in the history: the greeting goes with turn 0, and turn num_turns
// is the end.
size_t TurnBegin(const std::vector<size_t>& starts, int turn, size_t history_size) {
  if (turn <= 0) return 0;
  return turn < static_cast<int>(starts.size()) ? starts[turn] : history_size;
}

int CountTokens(const Tokenizer& tokenizer, std::string_view text) {
  return static_cast<int>(tokenizer.Encode(text, false, false).size());
}

// `text` cut to about `max_tokens` tokens, at a character boundary (and a space when one is
// near), marked with "…". Unchanged when it is short enough.
std::string CutToTokens(const Tokenizer& tokenizer, const std::string& text, int max_tokens) {
  const int tokens = CountTokens(tokenizer, text);
  if (tokens <= max_tokens) return text;
  size_t end = text.size() * static_cast<size_t>(std::max(0, max_tokens)) / static_cast<size_t>(tokens);
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;  // not inside a character
  const size_t space = text.rfind(' ', end);
  if (space != std::string::npos && space + 24 >= end) end = space;
  return text.substr(0, end) + kCutMark;
}

// Tokens each turn in [from, to) adds to a rendered prompt, its context messages left out.
std::vector<int> TurnTokens(const Tokenizer& tokenizer, const std::vector<ChatMessage>& history,
                            const std::vector<size_t>& starts, int from, int to, int reply_prefix_tokens = 0) {
  std::vector<int> out;
  for (int t = from; t < to; ++t) {
    int n = 0;
    for (size_t i = TurnBegin(starts, t, history.size()); i < TurnBegin(starts, t + 1, history.size()); ++i) {
      if (history[i].role == "system") continue;
      n += CountTokens(tokenizer, history[i].content) + kMessageOverheadTokens;
      if (history[i].role == "assistant") n += reply_prefix_tokens;
    }
    out.push_back(n);
  }
  return out;
}

// The user and assistant messages of turns [from, to).
std::vector<ChatMessage> TurnMessages(const std::vector<ChatMessage>& history, const std::vector<size_t>& starts,
                                      int from, int to) {
  std::vector<ChatMessage> out;
  for (size_t i = TurnBegin(starts, from, history.size()); i < TurnBegin(starts, to, history.size()); ++i) {
    if (history[i].role != "system") out.push_back(history[i]);
  }
  return out;
}

// The end of the oldest turns from `from` on that free at least `need` tokens (at least one
// turn when there is one).
int FoldEnd(const std::vector<int>& turn_tokens, int from, int num_turns, int64_t need) {
  int end = from;
  for (int64_t freed = 0; end < num_turns && freed < need; ++end) freed += turn_tokens[end - from];
  if (end == from && from < num_turns) ++end;
  return end;
}

// Tokens the oldest turns must free for a prompt of `size` tokens, whose summary covers `folded`
// turns, to come down to the low mark once a new summary replaces that one.
int64_t FoldNeed(const TurnPlannerDeps& deps, int size, const std::string& summary, int folded) {
  const int old_summary = folded > 0 && !summary.empty() ? CountTokens(*deps.tokenizer, summary) + 16 : 0;
  const int new_summary = deps.summarize ? deps.summary_tokens + 16 : 0;
  return static_cast<int64_t>(size) - deps.fold.Low() - old_summary + new_summary;
}

int PriorityOf(const CharacterProfile& profile, const ActivatedLore& lore) {
  return profile.lorebook && lore.entry_index < profile.lorebook->entries.size()
             ? profile.lorebook->entries[lore.entry_index].priority
             : 0;
}

// The turn's context within the budget: post-history instructions always, then triggered lore
// by priority (shown in activation order), then memories by rank, each cut to a quarter of the budget;
// an item that does not fit is left out. A memory whose text a context message in `shown`
// already holds is left out too.
struct FittedContext {
  std::string text;
  int tokens = 0;
  std::vector<RecalledUnit> memories;
  std::vector<ActivatedLore> lore;
};

FittedContext FitTurnContext(const TurnPlannerDeps& deps, const CharacterProfile& profile, const SessionSetup& setup,
                             const std::vector<RecalledUnit>& memories, const std::vector<ActivatedLore>& lore,
                             const std::vector<std::string_view>& shown) {
  const Tokenizer& tokenizer = *deps.tokenizer;
  const int budget = deps.context_budget_tokens;
  FittedContext out;
  std::vector<RecalledMemory> kept_memories;
  const auto build = [&] {
    return BuildTurnContext(profile, setup, kept_memories, out.lore, deps.prompt_options);
  };
  const auto fits = [&](const std::string& text) { return budget <= 0 || CountTokens(tokenizer, text) <= budget; };
  if (budget <= 0) {
    out.lore = lore;
  } else {
    // Highest priority first (LoreEntry::priority), shown in activation order.
    std::vector<size_t> by_priority(lore.size());
    for (size_t i = 0; i < lore.size(); ++i) by_priority[i] = i;
    std::stable_sort(by_priority.begin(), by_priority.end(),
                     [&](size_t a, size_t b) { return PriorityOf(profile, lore[a]) > PriorityOf(profile, lore[b]); });
    std::vector<bool> kept(lore.size(), false);
    for (size_t i : by_priority) {
      kept[i] = true;
      out.lore.clear();
      for (size_t j = 0; j < lore.size(); ++j) {
        if (kept[j]) out.lore.push_back(lore[j]);
      }
      if (!fits(build())) kept[i] = false;
    }
    out.lore.clear();
    for (size_t j = 0; j < lore.size(); ++j) {
      if (kept[j]) out.lore.push_back(lore[j]);
    }
  }
  for (const RecalledUnit& m : memories) {
    RecalledUnit cut = m;
    if (budget > 0) cut.text = CutToTokens(tokenizer, m.text, std::max(16, budget / 4));
    std::string_view as_shown = cut.text;  // what a context message holds of it
    if (cut.text != m.text) as_shown.remove_suffix(std::string_view(kCutMark).size());
    if (as_shown.empty() || std::any_of(shown.begin(), shown.end(), [as_shown](std::string_view s) {
          return s.find(as_shown) != std::string_view::npos;
        })) {
      continue;
    }
    kept_memories.push_back({cut.text, ""});
    if (!fits(build())) {
      kept_memories.pop_back();
      continue;
    }
    out.memories.push_back(std::move(cut));
  }
  out.text = build();
  out.tokens = out.text.empty() ? 0 : CountTokens(tokenizer, out.text);
  return out;
}

}  // namespace

int FoldMarks::High() const {
  if (max_prompt_tokens <= 0) return std::numeric_limits<int>::max();
  return high > 0 ? std::min(high, max_prompt_tokens) : max_prompt_tokens;
}

int FoldMarks::Low() const {
  if (max_prompt_tokens <= 0) return std::numeric_limits<int>::max();
  return low > 0 ? std::min(low, High()) : High() / 2;
}

int FoldMarks::Pre() const {
  if (max_prompt_tokens <= 0) return std::numeric_limits<int>::max();
  return pre > 0 ? std::min(pre, High()) : Low() + (High() - Low()) / 2;
}

FoldMarks FoldMarksFor(int max_prompt_tokens, double high_fraction, double low_fraction) {
  FoldMarks marks;
  marks.max_prompt_tokens = max_prompt_tokens;
  marks.high = std::max(1, static_cast<int>(max_prompt_tokens * high_fraction));
  marks.low = std::max(1, static_cast<int>(max_prompt_tokens * low_fraction));
  return marks;
}

// PlanTurn without the user's-line stop strings. The prompt and what the rendering needs.
static absl::StatusOr<TurnPlan> PlanCharacterTurn(const TurnPlannerDeps& deps, const Session& session,
                                  const StoredCharacter& character, const std::string& message,
                                  const TurnMemoryOptions& memory_options) {
  const CharacterProfile& profile = character.profile;
  const std::string reply_prefix = ReplyPrefixFor(profile);  // "Name:" for cards written as dialogue
  const SessionSetup& setup = session.setup;
  const Tokenizer& tokenizer = *deps.tokenizer;
  const int prefix_tokens = reply_prefix.empty() ? 0 : CountTokens(tokenizer, reply_prefix) + 1;
  const std::vector<ChatMessage>& history = session.history;
  const std::vector<size_t> starts = TurnStarts(history);
  const int num_turns = static_cast<int>(starts.size());
  const int window_from = std::min(session.summarized_turns, num_turns);  // first turn not folded
  TurnPlan plan;
  plan.character_version = character.update_time_ms;

  // Memories, not of the turns the window still shows.
  std::vector<RecalledUnit> recalled;
  if (deps.memory != nullptr && memory_options.enabled) {
    RecallRequest recall;
    recall.keys = {.tenant = session.tenant, .session_id = session.id, .character_id = session.character_id, .user_id = setup.user_id};
    recall.query_text = message;
    recall.query_emotion = session.mood;
    if (memory_options.emotion_source == QueryEmotionSource::kExplicit) {
      recall.query_emotion = memory_options.query_emotion;
    } else if (memory_options.emotion_source == QueryEmotionSource::kMessage && deps.rater != nullptr) {
      TROUPE_ASSIGN_OR_RETURN(recall.query_emotion, deps.rater->RateEmotion(message));
    }
    if (setup.point_in_time) recall.point_in_time = setup.point_in_time->ordinal;
    recall.options = memory_options.retrieval;
    recall.skip_turns_from = window_from;
    recall.skip_turns_to = num_turns;
    const absl::Time recall_start = absl::Now();
    TROUPE_ASSIGN_OR_RETURN(recalled, deps.memory->Recall(recall));
    plan.recall_time = absl::Now() - recall_start;
  }

  // Lore triggered by the recent messages and the new one.
  std::vector<ActivatedLore> lore;
  if (profile.lorebook) {
    std::vector<std::string> recent;
    const size_t from = history.size() > kMaxLoreScan ? history.size() - kMaxLoreScan : 0;
    for (size_t i = from; i < history.size(); ++i) {
      if (history[i].role != "system") recent.push_back(history[i].content);
    }
    recent.push_back(message);
    LoreOptions lore_options = deps.lore_options;
    lore_options.point_in_time = setup.point_in_time;
    lore_options.budget_excludes_constant = true;  // constant entries are in the preamble
    lore_options.count_tokens = [&tokenizer](std::string_view text) { return CountTokens(tokenizer, text); };
    lore_options.keys = character.lore_keys.get();
    LoreScanReport report;
    for (ActivatedLore& l : ActivateLore(*profile.lorebook, recent, lore_options, &report)) {
      if (l.trigger != LoreTrigger::kConstant) lore.push_back(std::move(l));
    }
    plan.lore_entries_skipped = report.entries_skipped;
    if (report.entries_skipped > 0) {
      TROUPE_LOG_WARNING("character %s: lorebook scan budget (%lld key-bytes) spent; %d lower-priority "
                         "entries not searched this turn",
                         character.id.c_str(), static_cast<long long>(lore_options.scan_budget),
                         report.entries_skipped);
    }
  }
  const auto use_context = [&plan](FittedContext fitted) {
    plan.context = std::move(fitted.text);
    plan.context_tokens = fitted.tokens;
    plan.memories = std::move(fitted.memories);
    plan.lore = std::move(fitted.lore);
  };

  // Append to the previous turn's tokens when they are still valid and the result stays under
  // the high mark. The context messages that prompt holds: those since its last full render.
  const bool can_append = !session.context_tokens.empty() && session.character_version == character.update_time_ms &&
                          deps.family != ChatFamily::kRaw;
  std::vector<std::string_view> shown;
  if (can_append) {
    const int contexts_from = std::max(window_from, session.contexts_from_turn);
    for (size_t i = TurnBegin(starts, contexts_from, history.size()); i < history.size(); ++i) {
      if (history[i].role == "system") shown.push_back(history[i].content);
    }
  }
  use_context(FitTurnContext(deps, profile, setup, recalled, lore, shown));
  bool passed_high = false;  // appending would pass the high mark: this turn folds to the low mark
  if (can_append) {
    const PromptText continuation =
        BuildMessagesContinuation(deps.family, NewMessages(message, plan.context), reply_prefix);
    if (!continuation.empty()) {
      plan.prompt = session.context_tokens;
      const std::vector<TokenId> tail = tokenizer.EncodePrompt(continuation, /*add_bos=*/false);
      plan.prompt.insert(plan.prompt.end(), tail.begin(), tail.end());
      const int size = static_cast<int>(plan.prompt.size());
      if (size <= deps.fold.High()) {
        // Past the pre-fold mark: the next fold's summary can start now, in the background.
        const bool pending = session.pending_summary && session.pending_summary->from_turn == window_from;
        if (deps.summarize && size >= deps.fold.Pre() && !pending && window_from < num_turns) {
          // The fold to come starts past the high mark, by up to one turn (the one whose
          // append passes it): estimate from there, so the summary made ahead covers the fold.
          const std::vector<int> turn_tokens =
              TurnTokens(tokenizer, history, starts, window_from, num_turns, prefix_tokens);
          const int one_turn = turn_tokens.empty() ? 0 : turn_tokens.back();
          const int end = FoldEnd(turn_tokens, window_from, num_turns,
                                  FoldNeed(deps, deps.fold.High() + one_turn, session.summary, window_from));
          plan.prefold = PrefoldJob{.from_turn = window_from,
                                    .to_turn = end,
                                    .summary = window_from > 0 ? session.summary : std::string(),
                                    .turns = TurnMessages(history, starts, window_from, end)};
        }
        return plan;
      }
      passed_high = true;
    }
    // Rendered afresh below, without the past contexts: a memory held back as shown is not.
    if (!shown.empty()) use_context(FitTurnContext(deps, profile, setup, recalled, lore, {}));
  }

  // Render in full: the preamble, the summary of the folded turns, the turns after them (their
  // context messages left out) and the new turn.
  plan.rendered_in_full = true;
  CharacterPromptOptions options = deps.prompt_options;
  std::string summary = session.summary;
  int folded = window_from;
  const auto render = [&] {
    std::vector<ChatMessage> messages = BuildCharacterPreamble(profile, setup, options);
    if (folded > 0 && !summary.empty()) {
      messages.push_back(ChatMessage{"system", "Summary of the conversation so far: " + summary});
    }
    for (size_t i = TurnBegin(starts, folded, history.size()); i < history.size(); ++i) {
      if (history[i].role != "system") messages.push_back(history[i]);
    }
    const std::vector<ChatMessage> next = NewMessages(message, plan.context);
    messages.insert(messages.end(), next.begin(), next.end());
    const ChatPrompt prompt = BuildMessagesPrompt(deps.family, MacroCharName(profile), messages, reply_prefix);
    plan.prompt = tokenizer.EncodePrompt(prompt.text, tokenizer.add_bos());
    plan.stop = prompt.stop;
    return static_cast<int>(plan.prompt.size());
  };
  // A render for another reason (no tokens held, a new character version) that fits is left
  // as it is. One that passes the high mark, or replaces an append that would have, goes down
  // to the low mark: shortened only to under the high mark, the next turn would pass it again
  // and pay another full render. The example dialogues go first.
  int size = render();
  if (size <= (passed_high ? deps.fold.Low() : deps.fold.High())) return plan;
  if (options.include_examples && !profile.example_dialogues.empty()) {
    options.include_examples = false;
    size = render();
    if (size <= deps.fold.Low()) return plan;
  }
  // Then the oldest turns, as many as the estimate says bring the prompt to the low mark, into
  // one summary; should the estimate fall short (the summary came out longer), half of the
  // rest at a time until the prompt is under the high mark.
  const std::vector<int> turn_tokens = TurnTokens(tokenizer, history, starts, folded, num_turns, prefix_tokens);
  int fold_to = FoldEnd(turn_tokens, folded, num_turns, FoldNeed(deps, size, summary, folded));
  // A summary made in the background for this start covers its turns; only turns past it, if
  // the estimate now wants more, are summarized here.
  int summarized_to = folded;
  if (deps.summarize && session.pending_summary && session.pending_summary->summary &&
      session.pending_summary->from_turn == folded) {
    summary = *session.pending_summary->summary;
    summarized_to = std::min(session.pending_summary->to_turn, num_turns);
    fold_to = std::max(fold_to, summarized_to);
    plan.summary_was_pending = true;
  }
  for (;;) {
    if (fold_to <= folded) {
      if (size <= deps.fold.High()) return plan;  // nothing left to fold, and it fits
      return absl::InvalidArgumentError(
          "the character's preamble and this message alone exceed the context; shorten the message "
          "or the character's profile");
    }
    if (deps.summarize && summarized_to < fold_to) {
      const absl::Time start = absl::Now();
      absl::StatusOr<std::string> folded_summary =
          deps.summarize(summary, TurnMessages(history, starts, summarized_to, fold_to));
      plan.summary_time += absl::Now() - start;
      TROUPE_RETURN_IF_ERROR(folded_summary.status());
      summary = *std::move(folded_summary);
      summarized_to = fold_to;
    }
    plan.folded_turns += fold_to - folded;
    folded = fold_to;
    size = render();
    if (size <= deps.fold.High()) {
      plan.new_summary = summary;
      plan.new_summarized_turns = folded;
      return plan;
    }
    fold_to = folded + std::max(1, (num_turns - folded) / 2);
    if (folded >= num_turns) fold_to = folded;  // nothing left to fold: fails above
  }
}

// Appends the stop strings of the user's line that `plan` lacks (every chat turn has them).
static void AddUserLineStops(const std::string& user_name, TurnPlan& plan) {
  for (std::string& stop : UserLineStops(user_name)) {
    if (std::find(plan.stop.begin(), plan.stop.end(), stop) == plan.stop.end()) plan.stop.push_back(std::move(stop));
  }
}

absl::StatusOr<TurnPlan> PlanTurn(const TurnPlannerDeps& deps, const Session& session, const StoredCharacter& character,
                                  const std::string& message, const TurnMemoryOptions& memory_options) {
  absl::StatusOr<TurnPlan> plan = PlanCharacterTurn(deps, session, character, message, memory_options);
  if (plan.ok()) AddUserLineStops(session.setup.user_name, *plan);
  return plan;
}

// PlanInlineTurn without the user's-line stop strings.
static TurnPlan PlanInlinePrompt(const Tokenizer& tokenizer, ChatFamily family, const Session& session,
                                 const std::string& message, const FoldMarks& fold) {
  TurnPlan plan;
  const PromptText continuation = session.context_tokens.empty()
                                      ? PromptText()
                                      : BuildChatContinuation(family, session.character, message);
  if (!continuation.empty()) {
    // Token for token the previous turn's prompt and reply, then the new turn: the prefix cache
    // serves everything before the continuation.
    plan.prompt = session.context_tokens;
    const std::vector<TokenId> tail = tokenizer.EncodePrompt(continuation, /*add_bos=*/false);
    plan.prompt.insert(plan.prompt.end(), tail.begin(), tail.end());
    if (static_cast<int>(plan.prompt.size()) <= fold.High()) return plan;
  }
  // Render the turns after the dropped ones; past the high mark (or replacing an append that
  // passed it), drop the oldest down to the low mark.
  const bool passed_high = !continuation.empty();
  plan.rendered_in_full = true;
  const std::vector<ChatMessage>& history = session.history;
  const std::vector<size_t> starts = TurnStarts(history);
  const int num_turns = static_cast<int>(starts.size());
  int dropped = std::min(session.summarized_turns, num_turns);
  const auto render = [&] {
    const std::vector<ChatMessage> kept(history.begin() + static_cast<ptrdiff_t>(TurnBegin(starts, dropped, history.size())),
                                        history.end());
    ChatPrompt prompt = BuildChatPrompt(family, session.character, kept, message);
    plan.prompt = tokenizer.EncodePrompt(prompt.text, tokenizer.add_bos());
    plan.stop = std::move(prompt.stop);
    return static_cast<int>(plan.prompt.size());
  };
  int size = render();
  if (size <= (passed_high ? fold.Low() : fold.High())) return plan;
  const std::vector<int> turn_tokens = TurnTokens(tokenizer, history, starts, dropped, num_turns);
  int drop_to = FoldEnd(turn_tokens, dropped, num_turns, static_cast<int64_t>(size) - fold.Low());
  const int first_dropped = dropped;
  while (drop_to > dropped) {
    dropped = drop_to;
    size = render();
    if (size <= fold.High()) break;
    drop_to = dropped + std::max(1, (num_turns - dropped) / 2);
    if (dropped >= num_turns) break;  // the message alone is too long: the engine says so
  }
  if (dropped != first_dropped) {
    plan.new_summary = "";
    plan.new_summarized_turns = dropped;
    plan.folded_turns = dropped - first_dropped;
  }
  return plan;
}

TurnPlan PlanInlineTurn(const Tokenizer& tokenizer, ChatFamily family, const Session& session,
                        const std::string& message, const FoldMarks& fold) {
  TurnPlan plan = PlanInlinePrompt(tokenizer, family, session, message, fold);
  AddUserLineStops(session.setup.user_name, plan);
  return plan;
}

}  // namespace troupe
