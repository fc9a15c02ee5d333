#include "engine/character/card_png.h"

#include <array>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace troupe {
namespace {

constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
constexpr uint32_t kMaxChunkLength = 0x7FFFFFFF;  // PNG's limit on a chunk's length field

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t ReadBigEndian32(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

void AppendBigEndian32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

bool IsChunkType(std::string_view type) {
  for (char c : type) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

std::string Hex(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

absl::Status PngError(std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("png: ", absl::string_view(message.data(), message.size())));
}

bool KeywordIs(std::string_view keyword, std::string_view want) {
  if (keyword.size() != want.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    char c = keyword[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != want[i]) return false;
  }
  return true;
}

// Splits a tEXt payload into keyword and text; false without the NUL separator.
bool SplitText(std::string_view data, std::string_view* keyword, std::string_view* text) {
  const size_t nul = data.find('\0');
  if (nul == std::string_view::npos) return false;
  *keyword = data.substr(0, nul);
  *text = data.substr(nul + 1);
  return true;
}

bool IsCardChunk(const PngChunk& chunk) {
  std::string_view keyword, text;
  return chunk.type == "tEXt" && SplitText(chunk.data, &keyword, &text) &&
         (KeywordIs(keyword, "chara") || KeywordIs(keyword, "ccv3"));
}

void AppendChunk(std::string_view type, std::string_view data, std::string* out) {
  AppendBigEndian32(static_cast<uint32_t>(data.size()), out);
  const size_t crc_start = out->size();
  out->append(type);
  out->append(data);
  AppendBigEndian32(PngCrc32(std::string_view(*out).substr(crc_start)), out);
}

void AppendTextChunk(std::string_view keyword, std::string_view json_text, std::string* out) {
  std::string data(keyword);
  data.push_back('\0');
  data += absl::Base64Escape(absl::string_view(json_text.data(), json_text.size()));
  AppendChunk("tEXt", data, out);
}

}  // namespace

uint32_t PngCrc32(std::string_view bytes, uint32_t crc) {
  crc = ~crc;
  for (char b : bytes) crc = kCrcTable[(crc ^ static_cast<unsigned char>(b)) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

absl::StatusOr<std::vector<PngChunk>> ParsePngChunks(std::string_view png) {
  if (png.substr(0, kSignature.size()) != kSignature) {
    return PngError("not a PNG file (bad signature)");
  }
  std::vector<PngChunk> chunks;
  size_t offset = kSignature.size();
  while (true) {
    const size_t remain = png.size() - offset;
    if (remain == 0) return PngError("no IEND chunk; the file is truncated");
    if (remain < 12) {
      return PngError(absl::StrCat("truncated chunk header at offset ", offset, ": ", remain,
                                   " bytes remain, a chunk needs at least 12"));
    }
    const uint32_t length = ReadBigEndian32(png.substr(offset, 4));
    const std::string type(png.substr(offset + 4, 4));
    if (!IsChunkType(type)) return PngError(absl::StrCat("bad chunk type at offset ", offset));
    if (length > kMaxChunkLength) {
      return PngError(absl::StrCat("chunk '", type, "' at offset ", offset, " has length ", length,
                                   ", over the PNG limit of 2^31 - 1"));
    }
    if (remain - 12 < length) {
      return PngError(absl::StrCat("truncated chunk '", type, "' at offset ", offset, ": needs ",
                                   length + 12ull, " bytes, ", remain, " remain"));
    }
    const std::string_view data = png.substr(offset + 8, length);
    const uint32_t stored = ReadBigEndian32(png.substr(offset + 8 + length, 4));
    const uint32_t computed = PngCrc32(png.substr(offset + 4, 4 + length));
    if (stored != computed) {
      return PngError(absl::StrCat("bad CRC in chunk '", type, "' at offset ", offset, " (stored ",
                                   Hex(stored), ", computed ", Hex(computed), ")"));
    }
    if (chunks.empty() && type != "IHDR") {
      return PngError(absl::StrCat("first chunk is '", type, "', expected 'IHDR'"));
    }
    chunks.push_back({type, data, offset});
    offset += 12 + length;
    if (type == "IEND") return chunks;
  }
}

absl::StatusOr<std::string> ReadCardFromPng(std::string_view png) {
  absl::StatusOr<std::vector<PngChunk>> chunks = ParsePngChunks(png);
  if (!chunks.ok()) return chunks.status();
  const PngChunk* chosen = nullptr;
  std::string_view chosen_keyword, chosen_text;
  for (const PngChunk& chunk : *chunks) {
    std::string_view keyword, text;
    if (!IsCardChunk(chunk) || !SplitText(chunk.data, &keyword, &text)) continue;
    const bool v3 = KeywordIs(keyword, "ccv3");
    if (chosen == nullptr || (v3 && !KeywordIs(chosen_keyword, "ccv3"))) {
      chosen = &chunk;
      chosen_keyword = keyword;
      chosen_text = text;
    }
    if (v3) break;
  }
  if (chosen == nullptr) return PngError("no 'ccv3' or 'chara' tEXt chunk; not a character card");
  std::string json_text;
  if (!absl::Base64Unescape(absl::string_view(chosen_text.data(), chosen_text.size()),
                            &json_text)) {
    return PngError(absl::StrCat("the '", std::string(chosen_keyword), "' chunk at offset ",
                                 chosen->offset, " is not valid base64"));
  }
  return json_text;
}

absl::StatusOr<std::string> WriteCardToPng(std::string_view png, const CardPngText& text) {
  if (text.chara_json.empty() && text.ccv3_json.empty()) {
    return absl::InvalidArgumentError("png: nothing to write; both card texts are empty");
  }
  absl::StatusOr<std::vector<PngChunk>> chunks = ParsePngChunks(png);
  if (!chunks.ok()) return chunks.status();
  std::string out(kSignature);
  out.reserve(png.size() + (text.chara_json.size() + text.ccv3_json.size()) * 4 / 3 + 64);
  for (const PngChunk& chunk : *chunks) {
    if (IsCardChunk(chunk)) continue;
    if (chunk.type == "IEND") {
      if (!text.chara_json.empty()) AppendTextChunk("chara", text.chara_json, &out);
      if (!text.ccv3_json.empty()) AppendTextChunk("ccv3", text.ccv3_json, &out);
    }
    out.append(png.substr(chunk.offset, 12 + chunk.data.size()));
  }
  return out;
}

}  // namespace troupe
