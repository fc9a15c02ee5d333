// Character cards embedded in PNG images, the way card sites and SillyTavern share them: the
// card JSON, base64-encoded, in a tEXt chunk keyed "chara" (V1/V2) or "ccv3" (V3).
// Pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe {

struct PngChunk {
  std::string type;       // four ASCII letters: "IHDR", "tEXt", "IEND"
  std::string_view data;  // the chunk's payload, a view into the parsed PNG bytes
  size_t offset = 0;      // bytes from the start of the file to the chunk's length field
};

// CRC-32 as PNG and zlib define it (polynomial 0xEDB88320), continuing from `crc`.
uint32_t PngCrc32(std::string_view bytes, uint32_t crc = 0);

// Walks a PNG: the 8-byte signature, then chunks up to and including IEND (bytes after IEND
// are ignored), checking every chunk's CRC. The views point into `png`, which must outlive
// the result. kInvalidArgument, with the chunk type and offset where there is one: bad
// signature, truncated chunk, chunk length over 2^31 - 1, bad chunk type, bad CRC, a first
// chunk other than IHDR, or no IEND.
[[nodiscard]] absl::StatusOr<std::vector<PngChunk>> ParsePngChunks(std::string_view png);

// The card JSON text in `png`: the first tEXt chunk keyed "ccv3" when there is one, else the
// first keyed "chara" (keywords compared ASCII case-insensitively), base64-decoded. Does not
// parse the JSON (see ParseCharacterCard). kInvalidArgument: a malformed PNG (as above), no
// card chunk, or a card chunk that is not valid base64.
[[nodiscard]] absl::StatusOr<std::string> ReadCardFromPng(std::string_view png);

struct CardPngText {
  std::string chara_json;  // written as the "chara" chunk (a V2 card); empty = no such chunk
  std::string ccv3_json;   // written as the "ccv3" chunk (a V3 card); empty = no such chunk
};

// `png` with every chara and ccv3 tEXt chunk removed and the non-empty texts of `text` added
// (base64) as tEXt chunks just before IEND; all other chunks are copied unchanged.
// kInvalidArgument: a malformed PNG (as ParsePngChunks), or both texts empty.
[[nodiscard]] absl::StatusOr<std::string> WriteCardToPng(std::string_view png,
                                                         const CardPngText& text);

}  // namespace troupe
