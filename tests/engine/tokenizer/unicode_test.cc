// Unicode classifier, UTF-8 codec and GPT-2 byte map.
#include "engine/tokenizer/unicode.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe::unicode {
namespace {

TEST(ClassifyTest, AsciiMatchesTheRegexClasses) {
  for (uint32_t c = 'a'; c <= 'z'; ++c) EXPECT_EQ(Classify(c), CharClass::kLetter) << c;
  for (uint32_t c = 'A'; c <= 'Z'; ++c) EXPECT_EQ(Classify(c), CharClass::kLetter) << c;
  for (uint32_t c = '0'; c <= '9'; ++c) EXPECT_EQ(Classify(c), CharClass::kNumber) << c;
  for (char c : std::string(" \t\n\v\f\r")) EXPECT_EQ(Classify(c), CharClass::kWhitespace) << +c;
  for (char c : std::string("!\"#%&'()*,-./:;?@[\\]_{}")) {
    EXPECT_EQ(Classify(c), CharClass::kPunctuation) << c;
  }
  for (char c : std::string("$+<=>^`|~")) EXPECT_EQ(Classify(c), CharClass::kOther) << c;
  EXPECT_EQ(Classify(0x00), CharClass::kOther);
  EXPECT_EQ(Classify(0x7F), CharClass::kOther);
}

TEST(ClassifyTest, Latin1IsExact) {
  EXPECT_EQ(Classify(0x85), CharClass::kWhitespace);   // NEXT LINE
  EXPECT_EQ(Classify(0xA0), CharClass::kWhitespace);   // NO-BREAK SPACE
  EXPECT_EQ(Classify(0xAA), CharClass::kLetter);       // ª
  EXPECT_EQ(Classify(0xB5), CharClass::kLetter);       // µ
  EXPECT_EQ(Classify(0xB2), CharClass::kNumber);       // ²
  EXPECT_EQ(Classify(0xBD), CharClass::kNumber);       // ½
  EXPECT_EQ(Classify(0xBF), CharClass::kPunctuation);  // ¿
  EXPECT_EQ(Classify(0xD7), CharClass::kOther);        // ×
  EXPECT_EQ(Classify(0xE9), CharClass::kLetter);       // é
  EXPECT_EQ(Classify(0xF7), CharClass::kOther);        // ÷
  EXPECT_EQ(Classify(0xFF), CharClass::kLetter);       // ÿ
}

TEST(ClassifyTest, CommonScripts) {
  EXPECT_EQ(Classify(0x0153), CharClass::kLetter);       // œ
  EXPECT_EQ(Classify(0x0301), CharClass::kMark);         // combining acute
  EXPECT_EQ(Classify(0x03BB), CharClass::kLetter);       // λ
  EXPECT_EQ(Classify(0x0416), CharClass::kLetter);       // Ж
  EXPECT_EQ(Classify(0x05D0), CharClass::kLetter);       // א
  EXPECT_EQ(Classify(0x0628), CharClass::kLetter);       // ب
  EXPECT_EQ(Classify(0x0663), CharClass::kNumber);       // Arabic-Indic three
  EXPECT_EQ(Classify(0x0928), CharClass::kLetter);       // न
  EXPECT_EQ(Classify(0x094D), CharClass::kMark);         // Devanagari virama
  EXPECT_EQ(Classify(0x0E01), CharClass::kLetter);       // ก
  EXPECT_EQ(Classify(0x0E31), CharClass::kMark);         // Thai mai han-akat
  EXPECT_EQ(Classify(0x2003), CharClass::kWhitespace);   // EM SPACE
  EXPECT_EQ(Classify(0x200D), CharClass::kOther);        // ZERO WIDTH JOINER
  EXPECT_EQ(Classify(0x2014), CharClass::kPunctuation);  // —
  EXPECT_EQ(Classify(0x2460), CharClass::kNumber);       // ①
  EXPECT_EQ(Classify(0x216B), CharClass::kNumber);       // Ⅻ
  EXPECT_EQ(Classify(0x3000), CharClass::kWhitespace);   // IDEOGRAPHIC SPACE
  EXPECT_EQ(Classify(0x3002), CharClass::kPunctuation);  // 。
  EXPECT_EQ(Classify(0x3042), CharClass::kLetter);       // あ
  EXPECT_EQ(Classify(0x30AB), CharClass::kLetter);       // カ
  EXPECT_EQ(Classify(0x4F60), CharClass::kLetter);       // 你
  EXPECT_EQ(Classify(0xD55C), CharClass::kLetter);       // 한
  EXPECT_EQ(Classify(0xFF21), CharClass::kLetter);       // Ａ
  EXPECT_EQ(Classify(0xFF11), CharClass::kNumber);       // １
  EXPECT_EQ(Classify(0xFFFD), CharClass::kOther);        // replacement character
  EXPECT_EQ(Classify(0x1F600), CharClass::kOther);       // 😀
  EXPECT_EQ(Classify(0x20000), CharClass::kLetter);      // CJK Extension B
  EXPECT_EQ(Classify(0x110000), CharClass::kOther);      // past Unicode
}

TEST(Utf8Test, DecodesValidSequences) {
  EXPECT_EQ(DecodeUtf8("a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80"),
            (std::vector<uint32_t>{'a', 0xE9, 0x4F60, 0x1F600}));
  EXPECT_TRUE(DecodeUtf8("").empty());
}

TEST(Utf8Test, EachMalformedByteBecomesOneReplacement) {
  constexpr uint32_t R = 0xFFFD;
  EXPECT_EQ(DecodeUtf8("\xC0\xAF"), (std::vector<uint32_t>{R, R}));          // overlong '/'
  EXPECT_EQ(DecodeUtf8("\xED\xA0\x80"), (std::vector<uint32_t>{R, R, R}));   // surrogate
  EXPECT_EQ(DecodeUtf8("\xF4\x90\x80\x80"), (std::vector<uint32_t>(4, R)));  // > U+10FFFF
  EXPECT_EQ(DecodeUtf8("\xE4\xBDx"), (std::vector<uint32_t>{R, R, 'x'}));    // truncated
  EXPECT_EQ(DecodeUtf8("\x80z"), (std::vector<uint32_t>{R, 'z'}));           // lone continuation
  EXPECT_EQ(DecodeUtf8("\xEF\xBF\xBD"), (std::vector<uint32_t>{R}));         // a real U+FFFD
}

TEST(Utf8Test, EncodeRoundTripsAtLengthBoundaries) {
  for (uint32_t cpt : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cpt, &s);
    const size_t want_len = cpt < 0x80 ? 1 : cpt < 0x800 ? 2 : cpt < 0x10000 ? 3 : 4;
    EXPECT_EQ(s.size(), want_len) << cpt;
    EXPECT_EQ(DecodeUtf8(s), std::vector<uint32_t>{cpt}) << cpt;
  }
}

TEST(Utf8Test, IncompleteSuffixLenCountsOnlyAValidPrefix) {
  EXPECT_EQ(IncompleteSuffixLen(""), 0u);
  EXPECT_EQ(IncompleteSuffixLen("abc"), 0u);
  EXPECT_EQ(IncompleteSuffixLen("a\xE4"), 1u);
  EXPECT_EQ(IncompleteSuffixLen("a\xE4\xBD"), 2u);
  EXPECT_EQ(IncompleteSuffixLen("a\xE4\xBD\xA0"), 0u);
  EXPECT_EQ(IncompleteSuffixLen("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteSuffixLen("\xC3"), 1u);
  EXPECT_EQ(IncompleteSuffixLen("a\x80"), 0u);  // stray continuation: never completes
  EXPECT_EQ(IncompleteSuffixLen("\x80\x80\x80\x80"), 0u);
  EXPECT_EQ(IncompleteSuffixLen("\xFF"), 0u);  // invalid lead
}

TEST(ByteMapTest, MatchesGpt2) {
  EXPECT_EQ(ByteToCodepoint(' '), 0x120u);   // Ġ
  EXPECT_EQ(ByteToCodepoint('\n'), 0x10Au);  // Ċ
  EXPECT_EQ(ByteToCodepoint(0x00), 0x100u);
  EXPECT_EQ(ByteToCodepoint(0x7F), 0x121u);
  EXPECT_EQ(ByteToCodepoint(0xAD), 0x143u);  // the last unprintable byte
  EXPECT_EQ(ByteToCodepoint('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(ByteToCodepoint(0xE9), 0xE9u);
  EXPECT_EQ(CodepointToByte(0x144), -1);
  EXPECT_EQ(CodepointToByte(0x4F60), -1);
  EXPECT_EQ(CodepointToByte(0x20), -1);  // a raw space is not in the image
}

TEST(ByteMapTest, IsABijectionOnBytes) {
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(CodepointToByte(ByteToCodepoint(static_cast<uint8_t>(b))), b);
  }
  std::string encoded;
  AppendByteEncoded(" a\n", &encoded);
  EXPECT_EQ(encoded,
            "\xC4\xA0"
            "a"
            "\xC4\x8A");  // "Ġ" "a" "Ċ"
}

}  // namespace
}  // namespace troupe::unicode
