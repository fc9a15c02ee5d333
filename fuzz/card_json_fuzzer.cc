// Fuzzes Character Card JSON import (engine/character/character_card, card_json): arbitrary
// bytes as a card. For a card that imports, export must give a card that imports again, and
// export is a fixed point after one round (docs/characters.md "Lossless round trip": the
// export starts from the raw card and patches the known fields in, so a second export of its
// own output has nothing left to change). The card's macros, example dialogue and lorebook
// run as a prompt build would run them.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/check.h"
#include "engine/character/character_card.h"
#include "engine/character/lorebook.h"

namespace troupe {
namespace {

void CheckExport(const CharacterProfile& profile, CardSpec spec) {
  const std::string first = ToCharacterCardJson(profile, spec);
  absl::StatusOr<CharacterProfile> again = ParseCharacterCard(first);
  TROUPE_CHECK_MSG(again.ok(), "exported card does not import: %s",
                   std::string(again.status().message()).c_str());
  const std::string second = ToCharacterCardJson(*again, spec);
  TROUPE_CHECK_MSG(first == second, "export is not a fixed point");
}

void UseLikeAPrompt(const CharacterProfile& profile) {
  (void)SubstituteMacros(profile.description, MacroCharName(profile), "User");
  (void)ResolvePromptOverride(profile.system_prompt, "global");
  const std::string names[] = {profile.name};
  (void)ParseExampleDialogues(profile.mes_example, names);
  const std::string messages[] = {profile.first_message, profile.scenario};
  if (profile.lorebook) (void)ActivateLore(*profile.lorebook, messages);
}

}  // namespace
}  // namespace troupe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<troupe::CharacterProfile> profile = troupe::ParseCharacterCard(text);
  if (!profile.ok()) return 0;
  troupe::UseLikeAPrompt(*profile);
  troupe::CheckExport(*profile, troupe::CardSpec::kV2);
  troupe::CheckExport(*profile, troupe::CardSpec::kV3);
  return 0;
}
