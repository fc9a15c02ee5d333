// Proto <-> engine conversion of characters, session setups and emotions (character.proto).
// The only place that knows both; validation of client input happens here, with
// kInvalidArgument messages naming the field.
#pragma once

#include "absl/status/statusor.h"
#include "engine/character/character_registry.h"
#include "engine/memory/emotion.h"
#include "engine/session/character_prompt.h"
#include "troupe/v1/character.pb.h"

namespace troupe {

// kInvalidArgument naming the field: a missing name, extensions_json that is not a JSON
// object, big_five without exactly 5 values, an emotion outside 1..10, a text over the card
// limits (character_card.h).
[[nodiscard]] absl::StatusOr<CharacterProfile> ProfileFromProto(const v1::CharacterProfile& proto);
void ProfileToProto(const CharacterProfile& profile, v1::CharacterProfile* proto);
void StoredCharacterToProto(const StoredCharacter& character, v1::StoredCharacter* proto);

// `field` names the message in errors ("setup.initial_mood").
[[nodiscard]] absl::StatusOr<EmotionVector> EmotionFromProto(const v1::EmotionVector& proto,
                                                             const std::string& field);
void EmotionToProto(const EmotionVector& v, v1::EmotionVector* proto);

// kInvalidArgument: bad initial mood, greeting_index < -1, over-long texts.
[[nodiscard]] absl::StatusOr<SessionSetup> SessionSetupFromProto(const v1::SessionSetup& proto,
                                                                 bool has_setup);
void SessionSetupToProto(const SessionSetup& setup, v1::SessionSetup* proto);

}  // namespace troupe
