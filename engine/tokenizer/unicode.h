// UTF-8 helpers and a compact Unicode classifier for the tokenizers' pre-tokenizer, plus the GPT-2
// byte <-> code point map. Pure functions over constant tables: safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::unicode {

// Coarse general category of a code point, as llama.cpp's pre-tokenizer sees it. kOther covers
// symbols, control characters, format characters and unassigned code points.
enum class CharClass : uint8_t {
  kOther = 0,
  kLetter,       // \p{L}: Lu Ll Lt Lm Lo
  kNumber,       // \p{N}: Nd Nl No
  kWhitespace,   // the Unicode White_Space property (\s in llama.cpp)
  kPunctuation,  // \p{P}
  kMark,         // \p{M}: combining marks (not letters, so they break a \p{L}+ run)
};

// Classifies `cpt`. Exact for ASCII and Latin-1; table-driven for Latin extensions, Greek,
// Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Hangul, kana, CJK, fullwidth forms, the
// general-punctuation and symbol blocks and emoji. Other scripts fall back to a per-block guess
// (documented in unicode.cc). Code points above U+10FFFF are kOther.
CharClass Classify(uint32_t cpt);

inline bool IsLetter(uint32_t cpt) { return Classify(cpt) == CharClass::kLetter; }
inline bool IsNumber(uint32_t cpt) { return Classify(cpt) == CharClass::kNumber; }
inline bool IsWhitespace(uint32_t cpt) { return Classify(cpt) == CharClass::kWhitespace; }

// Length in bytes of the UTF-8 sequence that starts with `lead` judged by its high bits alone
// (1 for continuation bytes and invalid leads), as llama.cpp's unicode_len_utf8.
inline size_t Utf8SeqLen(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes one code point at text[*offset] and advances *offset. A malformed or truncated
// sequence (bad continuation, overlong, surrogate, > U+10FFFF) yields U+FFFD and advances one
// byte. REQUIRES: *offset < text.size().
uint32_t DecodeOne(std::string_view text, size_t* offset);

// Decodes all of `text`; each malformed byte becomes one U+FFFD.
std::vector<uint32_t> DecodeUtf8(std::string_view text);

// Appends the UTF-8 encoding of `cpt` (REQUIRES: cpt <= 0x10FFFF) to *out.
void AppendUtf8(uint32_t cpt, std::string* out);

// Number of bytes at the end of `text` that form an incomplete (but so far valid) UTF-8 prefix:
// 0 when `text` ends on a character boundary. At most 3.
size_t IncompleteSuffixLen(std::string_view text);

// ---- GPT-2 byte-level map ----
// GPT-2 maps every byte to a printable code point: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map
// to themselves, the other 68 bytes to U+0100 upwards in byte order (so ' ' -> U+0120 'Ġ').
uint32_t ByteToCodepoint(uint8_t byte);
// Inverse of ByteToCodepoint; -1 if `cpt` is not in the image of the map.
int CodepointToByte(uint32_t cpt);
// Appends the byte-level encoding of every byte of `bytes` to *out (UTF-8).
void AppendByteEncoded(std::string_view bytes, std::string* out);

}  // namespace troupe::unicode
