// StreamingDetokenizer and the UTF-8 helpers: deltas are always valid UTF-8 and add up to the
// decoded text.
#include <memory>
#include <string>
#include <vector>

#include "engine/formats/gguf.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

// A SentencePiece vocabulary with <unk> <s> </s>, the 256 byte tokens (<0x00> is id 3) and a
// few words, so a test can stream any byte sequence.
std::unique_ptr<Tokenizer> ByteVocab() {
  VocabData d;
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>"};
  d.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    d.tokens.push_back(name);
    d.token_types.push_back(6);
  }
  d.tokens.push_back("\xE2\x96\x81Hello");
  d.token_types.push_back(1);
  auto tok = Tokenizer::FromVocab(std::move(d));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return *std::move(tok);
}

TokenId Byte(uint8_t b) { return 3 + b; }

TEST(StreamingDetokenizerTest, HoldsBackAnIncompleteCharacter) {
  auto tok = ByteVocab();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.Push(Byte('a')), "a");
  EXPECT_EQ(stream.Push(Byte(0xE4)), "");  // 你 = E4 BD A0
  EXPECT_EQ(stream.Push(Byte(0xBD)), "");
  EXPECT_EQ(stream.Push(Byte(0xA0)), "\xE4\xBD\xA0");
  EXPECT_EQ(stream.Push(Byte(0xF0)), "");  // 😀 = F0 9F 98 80
  EXPECT_EQ(stream.Push(Byte(0x9F)), "");
  EXPECT_EQ(stream.Push(Byte(0x98)), "");
  EXPECT_EQ(stream.Push(Byte(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.Flush(), "");
}

TEST(StreamingDetokenizerTest, KeepsTheLeadingSpaceOfTheFirstToken) {
  // A completion continues its prompt ("They saw a big" + " box"): nothing is stripped.
  auto tok = ByteVocab();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.Push(tok->Find("\xE2\x96\x81Hello")), " Hello");
}

TEST(StreamingDetokenizerTest, BytesThatCanNeverCompleteBecomeReplacementCharacters) {
  auto tok = ByteVocab();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.Push(Byte(0x80)), "\xEF\xBF\xBD");  // stray continuation byte
  EXPECT_EQ(stream.Push(Byte(0xE4)), "");              // lead byte...
  EXPECT_EQ(stream.Push(Byte('x')), "\xEF\xBF\xBDx");  // ...interrupted by ASCII
  EXPECT_EQ(stream.Push(Byte(0xC3)), "");
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");  // the stream ended mid-character
  EXPECT_EQ(stream.Flush(), "");
}

TEST(StreamingDetokenizerTest, ControlTokensProduceNoText) {
  auto tok = ByteVocab();
  StreamingDetokenizer stream(*tok);
  EXPECT_EQ(stream.Push(1), "");
  EXPECT_EQ(stream.Push(2), "");
  EXPECT_EQ(stream.Push(Byte('z')), "z");
}

TEST(StreamingDetokenizerTest, SmolLm2DeltasAreValidAndAddUpToTheText) {
  auto file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  // Emoji and CJK characters split across several byte-level tokens.
  const std::string text =
      "Hi \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D"
      "\xF0\x9F\x91\xA9 caf\xC3\xA9!";
  const std::vector<TokenId> ids = (*tok)->Encode(text, false, false);
  ASSERT_GT(ids.size(), 10u);
  StreamingDetokenizer stream(**tok);
  std::string joined;
  int num_empty = 0;
  for (TokenId id : ids) {
    const std::string delta = stream.Push(id);
    EXPECT_TRUE(IsValidUtf8(delta));
    num_empty += delta.empty();
    joined += delta;
  }
  joined += stream.Flush();
  EXPECT_EQ(joined, text);
  EXPECT_GT(num_empty, 0);  // some token did end mid-character, so something was held back
}

TEST(Utf8ValidityTest, AcceptsWellFormedAndRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE4\xBD\xA0 \xF0\x9F\x98\x80 \xEF\xBF\xBD"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("a\x80z"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(Utf8ValidityTest, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(SanitizeUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(SanitizeUtf8("\xE4\xBD"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xFF\xFE\xC0\xAF\xED\xA0\x80")));
}

}  // namespace
}  // namespace troupe
