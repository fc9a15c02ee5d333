// Pre-tokenizer splits, worked out by hand from the regexes in pretokenizer.h. The golden test
// checks the same code against llama.cpp through whole tokenizations.
#include "engine/tokenizer/pretokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

using Words = std::vector<std::string>;

TEST(PreTokenizeTest, Gpt2KeepsOneSpaceForTheNextWord) {
  // "  test": \s+(?!\S) leaves the last space to " test"; at the end the whole run is a word.
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kGpt2, "Hello world's  test  "),
            (Words{"Hello", " world", "'s", " ", " test", "  "}));
}

TEST(PreTokenizeTest, Gpt2ContractionsAreCaseSensitive) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kGpt2, "I'm I'M"), (Words{"I", "'m", " I", "'", "M"}));
}

TEST(PreTokenizeTest, Gpt2GroupsPunctuationAndNumbers) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kGpt2, "x = 3.14!!\n"),
            (Words{"x", " =", " 3", ".", "14", "!!", "\n"}));
}

TEST(PreTokenizeTest, SmolLmIsolatesEveryDigitFirst) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kDigitsThenGpt2, "abc 123x"),
            (Words{"abc", " ", "1", "2", "3", "x"}));
}

TEST(PreTokenizeTest, Llama3AttachesOneLeadingNonLetterAndGroupsDigitsByThree) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kLlama3, "Hello\tworld 12345\n\n  x"),
            (Words{"Hello", "\tworld", " ", "123", "45", "\n\n", " ", " x"}));
}

TEST(PreTokenizeTest, Qwen2SplitsDigitsOneByOne) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kQwen2, "Hello\tworld 12345\n\n  x"),
            (Words{"Hello", "\tworld", " ", "1", "2", "3", "4", "5", "\n\n", " ", " x"}));
}

TEST(PreTokenizeTest, Llama3ContractionsIgnoreCaseAndPunctuationKeepsNewlines) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kLlama3, "I'M ok!!\n\nnext"),
            (Words{"I", "'M", " ok", "!!\n\n", "next"}));
}

TEST(PreTokenizeTest, DefaultChainsFourRegexes) {
  // [\p{P}$+<=>^~|]+ isolates "+" and "="; GPT-2 splits the rest; \p{N}+ then [0-9]{3} cut the
  // number into triples from the left.
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kDefault, "a+b=12345 ok"),
            (Words{"a", "+", "b", "=", "123", "45", " ok"}));
}

TEST(PreTokenizeTest, MalformedBytesBecomeReplacementCharacters) {
  EXPECT_EQ(PreTokenize(PreTokenizerKind::kGpt2,
                        "a\xFF"
                        "b"),
            (Words{"a", "\xEF\xBF\xBD", "b"}));
}

TEST(PreTokenizeTest, WordsConcatenateToTheInput) {
  const std::string texts[] = {
      "",
      " ",
      "\n",
      "   \n\n   ",
      "Hello, world!  How's it going?\r\n",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 and CJK \xE4\xBD\xA0\xE5\xA5\xBD 42",
      "code:\n    return x**2  # done\n"};
  for (PreTokenizerKind kind :
       {PreTokenizerKind::kGpt2, PreTokenizerKind::kDigitsThenGpt2, PreTokenizerKind::kLlama3,
        PreTokenizerKind::kQwen2, PreTokenizerKind::kDefault}) {
    for (const std::string& text : texts) {
      std::string joined;
      for (const std::string& w : PreTokenize(kind, text)) {
        EXPECT_FALSE(w.empty());
        joined += w;
      }
      EXPECT_EQ(joined, text) << static_cast<int>(kind);
    }
  }
}

TEST(PreTokenizerFromNameTest, MapsKnownNames) {
  auto smollm = PreTokenizerFromName("smollm");
  ASSERT_TRUE(smollm.ok());
  EXPECT_EQ(smollm->kind, PreTokenizerKind::kDigitsThenGpt2);
  EXPECT_FALSE(smollm->ignore_merges);

  auto llama3 = PreTokenizerFromName("llama-bpe");
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(llama3->kind, PreTokenizerKind::kLlama3);
  EXPECT_TRUE(llama3->ignore_merges);
  EXPECT_TRUE(llama3->default_add_bos);

  EXPECT_EQ(PreTokenizerFromName("qwen2")->kind, PreTokenizerKind::kQwen2);
  EXPECT_EQ(PreTokenizerFromName("gpt-2")->kind, PreTokenizerKind::kGpt2);
  EXPECT_EQ(PreTokenizerFromName("")->kind, PreTokenizerKind::kDefault);
}

TEST(PreTokenizerFromNameTest, RejectsUnknownNames) {
  auto bad = PreTokenizerFromName("tekken");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("tekken"), std::string::npos);
}

}  // namespace
}  // namespace troupe
