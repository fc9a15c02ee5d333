// Fuzzes PNG card import (engine/character/card_png): arbitrary bytes as a PNG. A PNG whose
// chunks parse also goes through WriteCardToPng, and reading the card back must give exactly
// the text written (the chunk walk, CRCs and base64 both ways). A card found in the PNG is
// imported as the server would (ParseCharacterCard).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/check.h"
#include "engine/character/card_png.h"
#include "engine/character/character_card.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view png(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> card = troupe::ReadCardFromPng(png);
  if (card.ok()) (void)troupe::ParseCharacterCard(*card);
  if (!troupe::ParsePngChunks(png).ok()) return 0;
  // Any bytes will do as the text; a slice of the input keeps it varied.
  const std::string text(png.substr(0, 64).empty() ? "x" : png.substr(0, 64));
  absl::StatusOr<std::string> written = troupe::WriteCardToPng(png, {.chara_json = "", .ccv3_json = text});
  TROUPE_CHECK_MSG(written.ok(), "WriteCardToPng refused a PNG that parses: %s",
                   std::string(written.status().message()).c_str());
  absl::StatusOr<std::string> back = troupe::ReadCardFromPng(*written);
  TROUPE_CHECK_MSG(back.ok() && *back == text, "the card written is not the card read back");
  return 0;
}
