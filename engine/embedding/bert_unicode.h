// Character rules of BERT's uncased tokenizer, as HF tokenizers implements them: the
// BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase) and the character
// classes BertPreTokenizer splits on. Pure functions over constant tables: safe from any thread.
//
// Coverage: the tables (bert_unicode_tables.h) were measured code point by code point on the
// reference tokenizer (scripts/golden/make_bert_unicode_tables.py), so every single code point
// normalizes exactly as there, with two documented exceptions: the CJK compatibility ideographs
// (U+F900..U+FAFF, U+2F800..U+2FA1F) keep their code point instead of their NFD ideograph, and
// surviving spacing marks (Mc, Me) are not canonically reordered.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::bert_unicode {

// Removed by the normalizer: control, format and private-use characters (Cc, Cf, Co), NUL,
// U+FFFD, and nonspacing marks (Mn, removed by strip_accents).
bool IsDropped(uint32_t cp);
// Rust's char::is_whitespace (Unicode White_Space); \t \n \r and the Zs spaces become ' '.
bool IsWhitespace(uint32_t cp);
// The CJK ideograph ranges handle_chinese_chars surrounds with spaces.
bool IsCjk(uint32_t cp);
// BertPreTokenizer's punctuation: ASCII punctuation ($+<=>^`| included) and Unicode P*.
bool IsPunctuation(uint32_t cp);

// Appends cp's canonical decomposition without nonspacing marks, lowercased (one to three code
// points; Hangul syllables give their two or three jamo). REQUIRES: !IsDropped(cp).
void AppendFolded(uint32_t cp, std::u32string* out);

// The BertNormalizer (lowercase = true, strip_accents = lowercase) for one code point, appended
// to *out: nothing for IsDropped characters, ' ' for whitespace, ' ' + folded + ' ' for CJK
// ideographs, AppendFolded for the rest. Normalization is per code point, so streaming this
// over a text equals Normalize(text).
void AppendNormalized(uint32_t cp, std::u32string* out);

// AppendNormalized over every code point of UTF-8 `text`. Malformed UTF-8 bytes decode to
// U+FFFD and are therefore dropped.
std::u32string Normalize(std::string_view text);

}  // namespace troupe::bert_unicode
