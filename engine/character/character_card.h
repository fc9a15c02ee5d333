// Character Card import and export (chara_card_v1/v2/v3 JSON) and the card's prompt macros.
// Pure functions, safe from any thread; the server calls them from its worker pool.
// Card formats and mapping: docs/characters.md.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/character/character_profile.h"

namespace troupe {

// Limits on an imported card. Exceeding one is kInvalidArgument naming the field and the limit.
inline constexpr size_t kMaxCardBytes = 2 << 20;        // the whole JSON text
inline constexpr size_t kMaxCardTextBytes = 256 << 10;  // any one string in the card
inline constexpr size_t kMaxLoreEntries = 1000;         // character_book.entries
inline constexpr size_t kMaxGreetings = 64;   // alternate_greetings, group_only_greetings each
inline constexpr int kMaxCardJsonDepth = 64;  // nesting of arrays and objects

enum class CardSpec { kV2, kV3 };

// Parses a card: V1 (no `spec`; top-level fields), V2 (`spec: "chara_card_v2"`) or V3
// (`spec: "chara_card_v3"`). Fields under `data` win over top-level ones; V3 fields are read
// whenever present, whatever the spec. Absent and null fields keep their defaults; troupe's
// structured fields come from data.extensions["troupe/profile"] and each lore entry's
// extensions["troupe/visible_from"]. The result keeps `json_text` in raw_card_json.
// Errors, all kInvalidArgument and naming the field path
// ("data.character_book.entries[3].keys: expected an array of strings"): invalid JSON, a
// wrong type, an unknown spec (the message lists the accepted ones), a missing or empty name,
// nesting deeper than kMaxCardJsonDepth, or any limit above.
[[nodiscard]] absl::StatusOr<CharacterProfile> ParseCharacterCard(std::string_view json_text);

// Serializes `profile` as a V2 or V3 card (compact JSON). Lossless: it starts from
// profile.raw_card_json (when that is a JSON object) and patches the known fields in, so keys
// this model does not know survive at every level (card, data, extensions, character_book,
// entries matched by LoreEntry::source_index). Fields the spec requires are always written;
// optional ones when they hold a value or the source card had them. Top-level V1 copies of
// name, description, personality, scenario, first_mes and mes_example are updated when the
// source has them. Invalid UTF-8 in a field is written as U+FFFD.
std::string ToCharacterCardJson(const CharacterProfile& profile, CardSpec spec);

// Splits mes_example into its `<START>` blocks (case-insensitive) and each block into turns.
// A line starting "{{user}}:", "<USER>:", "{{char}}:" or "<BOT>:" (case-insensitive; speaker
// normalized to "{{user}}" / "{{char}}") or "<name>:" for a name in `speaker_names` (exact;
// speaker kept as written) starts a turn; other lines continue the current turn, or, before
// the first turn of a block, form a narration turn with an empty speaker. Empty blocks and
// empty narration are dropped.
std::vector<ExampleDialogue> ParseExampleDialogues(std::string_view mes_example,
                                                   std::span<const std::string> speaker_names);

// The name {{char}} stands for: the nickname when set (V3), else the name.
const std::string& MacroCharName(const CharacterProfile& profile);

// Replaces {{char}} and <BOT> with `char_name`, {{user}} and <USER> with `user_name`,
// case-insensitively, in one pass (replacement text is not scanned again).
std::string SubstituteMacros(std::string_view text, std::string_view char_name,
                             std::string_view user_name);

// Resolves a card's system_prompt or post_history_instructions against the daemon's global
// one: an empty (or all-whitespace) card value yields `global_value`; otherwise the card value
// with every {{original}} (case-insensitive) replaced by `global_value`.
std::string ResolvePromptOverride(std::string_view card_value, std::string_view global_value);

}  // namespace troupe
