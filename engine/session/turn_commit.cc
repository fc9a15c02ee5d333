#include "engine/session/turn_commit.h"

#include <utility>

#include "common/log.h"
#include "common/status_macros.h"
#include "engine/character/character_card.h"

namespace troupe {

PendingTurn PendingTurnFor(const Session& session, const std::string& message, const TurnPlan& plan) {
  PendingTurn turn;
  turn.session_id = session.id;
  turn.base_version = session.history.size();
  turn.user_message = message;
  turn.context = plan.context;
  turn.prompt = plan.prompt;
  turn.character_version = plan.character_version;
  turn.rendered_in_full = plan.rendered_in_full;
  turn.new_summary = plan.new_summary;
  turn.new_summarized_turns = plan.new_summarized_turns;
  return turn;
}

TurnMemoryInput TurnMemoryFor(const Session& session, const StoredCharacter& character,
                              const std::string& message, std::optional<EmotionVector> turn_emotion) {
  TurnMemoryInput remember;
  remember.keys = {.tenant = session.tenant, .session_id = session.id, .character_id = session.character_id,
                   .user_id = session.setup.user_id};
  remember.turn_index = session.num_turns;
  remember.user_text = message;
  remember.user_name = session.setup.user_name;
  remember.character_name = MacroCharName(character.profile);
  if (session.setup.point_in_time) remember.story_time = session.setup.point_in_time->ordinal;
  remember.emotion = turn_emotion;
  return remember;
}

absl::Status CommitTurn(SessionStore& sessions, MemoryService* memory, PendingTurn turn, std::string reply,
                        std::vector<TokenId> reply_tokens, FinishReason reason) {
  SessionStore::Turn appended;
  appended.new_summary = std::move(turn.new_summary);
  appended.new_summarized_turns = turn.new_summarized_turns;
  appended.user_message = std::move(turn.user_message);
  appended.context = std::move(turn.context);
  appended.reply = reply;
  if (reason == FinishReason::kEos || reason == FinishReason::kLength) {
    appended.context_tokens = std::move(turn.prompt);
    appended.context_tokens.insert(appended.context_tokens.end(), reply_tokens.begin(), reply_tokens.end());
  }
  appended.character_version = turn.character_version;
  appended.rendered_in_full = turn.rendered_in_full;
  TROUPE_RETURN_IF_ERROR(sessions.AppendTurn(turn.session_id, turn.base_version, std::move(appended)));
  if (memory != nullptr && turn.remember) {
    turn.remember->reply_text = std::move(reply);
    const absl::Status queued = memory->Remember(*std::move(turn.remember));
    if (!queued.ok()) TROUPE_LOG_WARNING("memory not queued: %s", queued.ToString().c_str());
  }
  return absl::OkStatus();
}

}  // namespace troupe
