#include "engine/embedding/bert_unicode.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace troupe::bert_unicode {
namespace {

TEST(BertUnicodeTest, LowercasesAndStripsAccents) {
  EXPECT_EQ(Normalize("Caf\u00e9 NA\u00cfVE r\u00e9sum\u00e9"), U"cafe naive resume");
  EXPECT_EQ(Normalize("\u00c5ngstr\u00f6m Z\u00fcrich \u0141\u00f3d\u017a"),
            U"angstrom zurich \u0142odz");
  EXPECT_EQ(Normalize("Vi\u1ec7t \u0130stanbul stra\u00dfe"), U"viet istanbul stra\u00dfe");
  // Greek and Cyrillic: tonos and breve are nonspacing marks after NFD.
  EXPECT_EQ(Normalize("\u0386\u0398\u0397\u039d\u0391 \u0419\u041e\u0413"),
            U"\u03b1\u03b8\u03b7\u03bd\u03b1 \u0438\u043e\u0433");
  // A lone combining mark disappears.
  EXPECT_EQ(Normalize("e\u0301\u0308"), U"e");
}

TEST(BertUnicodeTest, DecomposesHangulAndKanaVoicing) {
  // U+D55C = U+1112 U+1161 U+11AB; U+AC00 has no final consonant.
  EXPECT_EQ(Normalize("\ud55c\uac00"), U"\u1112\u1161\u11ab\u1100\u1161");
  // U+304C (ga) = U+304B (ka) + U+3099 (a nonspacing voicing mark).
  EXPECT_EQ(Normalize("\u304c"), U"\u304b");
}

TEST(BertUnicodeTest, PadsCjkIdeographs) {
  EXPECT_EQ(Normalize("a\u4e2d\u6587b"), U"a \u4e2d  \u6587 b");
  EXPECT_TRUE(IsCjk(0x4E00));
  EXPECT_TRUE(IsCjk(0x20000));
  EXPECT_FALSE(IsCjk(0x3042));  // hiragana is not split off
  EXPECT_FALSE(IsCjk(0xAC00));  // nor Hangul
}

TEST(BertUnicodeTest, CleansControlFormatAndWhitespace) {
  EXPECT_EQ(Normalize(std::string("a\0b", 3)), U"ab");
  EXPECT_EQ(Normalize("a\tb\nc\rd\u00a0e\u3000f"), U"a b c d e f");
  EXPECT_EQ(Normalize("a\x0b\x0c\u0085b"), U"ab");  // Cc, although White_Space
  EXPECT_EQ(Normalize("a\u200b\u200d\u00ad\ufeff\ufffd\ue000b"), U"ab");
  EXPECT_EQ(Normalize("\xff\xfe"), U"");  // malformed UTF-8
}

TEST(BertUnicodeTest, Punctuation) {
  for (const char32_t c : std::u32string_view(U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) {
    EXPECT_TRUE(IsPunctuation(c)) << static_cast<uint32_t>(c);
  }
  EXPECT_TRUE(IsPunctuation(0x00BF));  // inverted question mark
  EXPECT_TRUE(IsPunctuation(0x2014));  // em dash
  EXPECT_TRUE(IsPunctuation(0x3002));  // ideographic full stop
  EXPECT_TRUE(IsPunctuation(0xFF01));  // fullwidth exclamation mark
  EXPECT_FALSE(IsPunctuation('a'));
  EXPECT_FALSE(IsPunctuation(0x00A9));  // copyright sign: a symbol (So), not punctuation
  EXPECT_FALSE(IsPunctuation(0x1F600));
}

}  // namespace
}  // namespace troupe::bert_unicode
