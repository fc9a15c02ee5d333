#include "engine/session/turn_planner.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/status_macros.h"
#include "engine/character/character_card.h"
#include "engine/session/prompt_builder.h"

namespace troupe {
namespace {

// How many recent messages (history + the new one) lore keys are scanned in, at most.
constexpr size_t kMaxLoreScan = 64;

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

}  // namespace

absl::StatusOr<TurnPlan> PlanTurn(const TurnPlannerDeps& deps, const Session& session,
                                  const StoredCharacter& character, const std::string& message,
                                  const TurnMemoryOptions& memory_options) {
  const CharacterProfile& profile = character.profile;
  const SessionSetup& setup = session.setup;
  TurnPlan plan;
  plan.character_version = character.update_time_ms;

  // Memories.
  std::vector<RecalledMemory> recalled;
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
    TROUPE_ASSIGN_OR_RETURN(plan.memories, deps.memory->Recall(recall));
    for (const RecalledUnit& m : plan.memories) recalled.push_back({m.text, ""});
  }

  // Lore triggered by the recent messages and the new one.
  if (profile.lorebook) {
    std::vector<std::string> recent;
    const size_t from = session.history.size() > kMaxLoreScan ? session.history.size() - kMaxLoreScan : 0;
    for (size_t i = from; i < session.history.size(); ++i) {
      if (session.history[i].role != "system") recent.push_back(session.history[i].content);
    }
    recent.push_back(message);
    LoreOptions lore_options = deps.lore_options;
    lore_options.point_in_time = setup.point_in_time;
    lore_options.budget_excludes_constant = true;  // constant entries are in the preamble
    const Tokenizer* tokenizer = deps.tokenizer;
    lore_options.count_tokens = [tokenizer](std::string_view text) {
      return static_cast<int>(tokenizer->Encode(text, false, false).size());
    };
    lore_options.keys = character.lore_keys.get();
    LoreScanReport report;
    for (ActivatedLore& l : ActivateLore(*profile.lorebook, recent, lore_options, &report)) {
      if (l.trigger != LoreTrigger::kConstant) plan.lore.push_back(std::move(l));
    }
    plan.lore_entries_skipped = report.entries_skipped;
    if (report.entries_skipped > 0) {
      TROUPE_LOG_WARNING("character %s: lorebook scan budget (%lld key-bytes) spent; %d lower-priority "
                         "entries not searched this turn",
                         character.id.c_str(), static_cast<long long>(lore_options.scan_budget),
                         report.entries_skipped);
    }
  }
  plan.context = BuildTurnContext(profile, setup, recalled, plan.lore, deps.prompt_options);

  // Append to the previous turn's tokens when they are still valid.
  const Tokenizer& tokenizer = *deps.tokenizer;
  const std::vector<ChatMessage> next = NewMessages(message, plan.context);
  if (!session.context_tokens.empty() && session.character_version == character.update_time_ms &&
      deps.family != ChatFamily::kRaw) {
    const PromptText continuation = BuildMessagesContinuation(deps.family, next);
    if (!continuation.empty()) {
      plan.prompt = session.context_tokens;
      const std::vector<TokenId> tail = tokenizer.EncodePrompt(continuation, /*add_bos=*/false);
      plan.prompt.insert(plan.prompt.end(), tail.begin(), tail.end());
      if (deps.max_prompt_tokens <= 0 || static_cast<int>(plan.prompt.size()) <= deps.max_prompt_tokens) {
        return plan;
      }
    }
  }

  // Render in full, shortening until it fits: examples first, then fold the oldest turns.
  plan.rendered_in_full = true;
  CharacterPromptOptions options = deps.prompt_options;
  const std::vector<size_t> starts = TurnStarts(session.history);
  const int num_turns = static_cast<int>(starts.size());
  std::string summary = session.summary;
  int folded = std::min(session.summarized_turns, num_turns);
  for (;;) {
    std::vector<ChatMessage> messages = BuildCharacterPreamble(profile, setup, options);
    if (folded > 0 && !summary.empty()) {
      messages.push_back(ChatMessage{"system", "Summary of the conversation so far: " + summary});
    }
    // The greeting (before the first turn) is folded with the first turn.
    const size_t first_kept = folded == 0 ? 0 : folded < num_turns ? starts[folded] : session.history.size();
    messages.insert(messages.end(), session.history.begin() + first_kept, session.history.end());
    messages.insert(messages.end(), next.begin(), next.end());
    const ChatPrompt prompt = BuildMessagesPrompt(deps.family, MacroCharName(profile), messages);
    plan.prompt = tokenizer.EncodePrompt(prompt.text, tokenizer.add_bos());
    plan.stop = prompt.stop;
    if (deps.max_prompt_tokens <= 0 || static_cast<int>(plan.prompt.size()) <= deps.max_prompt_tokens) {
      if (folded != session.summarized_turns) {
        plan.new_summary = summary;
        plan.new_summarized_turns = folded;
      }
      return plan;
    }
    if (options.include_examples && !profile.example_dialogues.empty()) {
      options.include_examples = false;
      continue;
    }
    if (folded >= num_turns) {
      return absl::InvalidArgumentError(
          "the character's preamble and this message alone exceed the context; shorten the message "
          "or the character's profile");
    }
    const int fold_to = folded + std::max(1, (num_turns - folded) / 2);
    if (deps.summarize) {
      const size_t from = folded == 0 ? 0 : starts[folded];
      const size_t to = fold_to < num_turns ? starts[fold_to] : session.history.size();
      std::vector<ChatMessage> turns;
      for (size_t i = from; i < to; ++i) {
        if (session.history[i].role != "system") turns.push_back(session.history[i]);
      }
      TROUPE_ASSIGN_OR_RETURN(summary, deps.summarize(summary, turns));
    }
    folded = fold_to;
  }
}

TurnPlan PlanInlineTurn(const Tokenizer& tokenizer, ChatFamily family, const Session& session,
                        const std::string& message) {
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
    return plan;
  }
  ChatPrompt prompt = BuildChatPrompt(family, session.character, session.history, message);
  plan.prompt = tokenizer.EncodePrompt(prompt.text, tokenizer.add_bos());
  plan.stop = std::move(prompt.stop);
  plan.rendered_in_full = true;
  return plan;
}

}  // namespace troupe
