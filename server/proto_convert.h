// Every conversion between troupe.v1 messages (roleplay.proto, character.proto) and engine
// types, with the request-field validation that belongs to the transport: kInvalidArgument
// messages name the field. The only place that knows both; pure functions, safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/character/character_registry.h"
#include "engine/character/lorebook.h"
#include "engine/engine.h"
#include "engine/memory/emotion.h"
#include "engine/memory/memory_service.h"
#include "engine/request/request.h"
#include "engine/sampler/sampling_params.h"
#include "engine/session/character_prompt.h"
#include "engine/session/session_store.h"
#include "engine/session/turn_planner.h"
#include "troupe/v1/character.pb.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// ---- generation ----

// Fields the proto leaves unset keep `defaults`' values (SamplingParams() for Generate, the
// server's chat preset for Chat). kInvalidArgument names the field and its allowed values
// (top_logprobs without logprobs, top_logprobs outside 0..20, and whatever
// ValidateSamplingParams rejects).
[[nodiscard]] absl::StatusOr<SamplingParams> SamplingFromProto(const v1::SamplingParams& proto,
                                                               const SamplingParams& defaults);

// kNone and kError have no proto value (errors end the RPC with a status) and map to
// FINISH_REASON_UNSPECIFIED.
v1::FinishReason FinishReasonToProto(FinishReason reason);

void ModelInfoToProto(const ModelInfo& info, v1::ServerInfo* proto);

// ---- characters ----

// kInvalidArgument naming the field: a missing name, extensions_json that is not a JSON
// object, big_five without exactly 5 values, an emotion outside 1..10, a text over the card
// limits (character_card.h).
[[nodiscard]] absl::StatusOr<CharacterProfile> ProfileFromProto(const v1::CharacterProfile& proto);
void ProfileToProto(const CharacterProfile& profile, v1::CharacterProfile* proto);
void StoredCharacterToProto(const StoredCharacter& character, v1::StoredCharacter* proto);

// The profile a create or update request carries, whichever form it came in: a profile
// (ProfileFromProto), a card's JSON (at most kMaxCardBytes) or a PNG card (at most 16 MiB).
// kInvalidArgument when none is set or the card does not parse.
[[nodiscard]] absl::StatusOr<CharacterProfile> ProfileFromRequest(const v1::CreateCharacterRequest& request);
[[nodiscard]] absl::StatusOr<CharacterProfile> ProfileFromRequest(const v1::UpdateCharacterRequest& request);

// `field` names the message in errors ("setup.initial_mood").
[[nodiscard]] absl::StatusOr<EmotionVector> EmotionFromProto(const v1::EmotionVector& proto,
                                                             const std::string& field);
void EmotionToProto(const EmotionVector& v, v1::EmotionVector* proto);

// ---- sessions and chat ----

v1::Role RoleToProto(const std::string& role);  // "user" -> ROLE_USER, ...
const char* RoleFromProto(v1::Role role);        // ROLE_USER -> "user", ...; null for UNSPECIFIED or unknown

Character CharacterFromProto(const v1::Character& proto);
void SessionToProto(const Session& session, v1::Session* proto);

// kInvalidArgument: bad initial mood, greeting_index < -1, over-long texts.
[[nodiscard]] absl::StatusOr<SessionSetup> SessionSetupFromProto(const v1::SessionSetup& proto,
                                                                 bool has_setup);
void SessionSetupToProto(const SessionSetup& setup, v1::SessionSetup* proto);

// A chat turn's memory options. Unspecified enums take the defaults (weighted retrieval,
// w_emo 0.15, the session's mood as the query emotion); RETRIEVAL_STRATEGY_NONE turns recall
// off. kInvalidArgument: an unknown enum value, top_k outside 0..50, QUERY_EMOTION_EXPLICIT
// without a valid query_emotion. The turn's own emotion (turn_emotion) is not read here.
[[nodiscard]] absl::StatusOr<TurnMemoryOptions> MemoryOptionsFromProto(const v1::MemoryOptions& proto);

// "session", "user_character" or "character".
const char* ScopeName(MemoryScope scope);

// Adds what a chat turn used to its final message: the recalled memories, then the triggered
// lore entries (named from `profile`'s lorebook when the index is in range).
void TurnRefsToProto(const std::vector<RecalledUnit>& memories, const std::vector<ActivatedLore>& lore,
                     const CharacterProfile& profile, v1::ChatResponse* response);

}  // namespace troupe
