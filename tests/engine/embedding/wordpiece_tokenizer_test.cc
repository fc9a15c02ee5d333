#include "engine/embedding/wordpiece_tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "tests/testing/minilm.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using Ids = std::vector<int32_t>;

// A toy vocabulary; the id of each token is its index.
const std::vector<std::string>& ToyTokens() {
  static const auto* tokens = new std::vector<std::string>{
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un",     "##aff", "##able", "a",  "##a",
      "cafe",  "!",     ",",     "hello", "world",  "\u4e2d", "##x",   "$",      "ab", "##b"};
  return *tokens;
}

std::unique_ptr<WordpieceTokenizer> Toy(WordpieceOptions options = {}) {
  auto t = WordpieceTokenizer::FromTokens(ToyTokens(), options);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

// The toy ids of `tokens`.
Ids ToyIds(const std::vector<std::string>& tokens) {
  Ids ids;
  for (const std::string& s : tokens) {
    const auto it = std::find(ToyTokens().begin(), ToyTokens().end(), s);
    EXPECT_NE(it, ToyTokens().end()) << s;
    ids.push_back(static_cast<int32_t>(it - ToyTokens().begin()));
  }
  return ids;
}

TEST(WordpieceTokenizerTest, GreedyLongestMatchWithContinuations) {
  const auto t = Toy();
  EXPECT_EQ(t->EncodeWordpieces("unaffable"), ToyIds({"un", "##aff", "##able"}));
  EXPECT_EQ(t->EncodeWordpieces("unx"), ToyIds({"un", "##x"}));
  EXPECT_EQ(t->EncodeWordpieces("abb"), ToyIds({"ab", "##b"}));
}

TEST(WordpieceTokenizerTest, UncoverableWordIsOneUnknown) {
  const auto t = Toy();
  // "un" matches but "##y" does not: the whole word becomes [UNK], not "un" + [UNK].
  EXPECT_EQ(t->EncodeWordpieces("uny hello"), ToyIds({"[UNK]", "hello"}));
}

TEST(WordpieceTokenizerTest, LowercasesStripsAccentsAndSplitsPunctuation) {
  const auto t = Toy();
  EXPECT_EQ(t->EncodeWordpieces("Hello, WORLD!"), ToyIds({"hello", ",", "world", "!"}));
  EXPECT_EQ(t->EncodeWordpieces("CAF\u00c9 Cafe\u0301"), ToyIds({"cafe", "cafe"}));
  EXPECT_EQ(t->EncodeWordpieces("$hello"), ToyIds({"$", "hello"}));  // ASCII symbol = punctuation
}

TEST(WordpieceTokenizerTest, CjkIdeographsAreSeparateWords) {
  const auto t = Toy();
  // U+4E2D is in the vocabulary, U+6587 is not; neither joins its neighbours.
  EXPECT_EQ(t->EncodeWordpieces("hello\u4e2d\u6587world"),
            ToyIds({"hello", "\u4e2d", "[UNK]", "world"}));
}

TEST(WordpieceTokenizerTest, DropsControlAndFormatCharacters) {
  const auto t = Toy();
  EXPECT_EQ(t->EncodeWordpieces("hel\u200blo\x07 wor\xc2\xadld"), ToyIds({"hello", "world"}));
  EXPECT_EQ(t->EncodeWordpieces("hello\tworld\r\n"), ToyIds({"hello", "world"}));
  EXPECT_EQ(t->EncodeWordpieces("hel\xfflo"), ToyIds({"hello"}));  // invalid UTF-8 byte dropped
}

TEST(WordpieceTokenizerTest, WordsOverMaxCharsAreUnknown) {
  const auto t = Toy();
  const Ids hundred = t->EncodeWordpieces(std::string(100, 'a'));
  ASSERT_EQ(hundred.size(), 100u);
  EXPECT_EQ(hundred[0], t->TokenId("a"));
  EXPECT_EQ(hundred[99], t->TokenId("##a"));
  EXPECT_EQ(t->EncodeWordpieces(std::string(101, 'a')), ToyIds({"[UNK]"}));
}

TEST(WordpieceTokenizerTest, SpecialTokensInTextAreMatchedVerbatim) {
  const auto t = Toy();
  EXPECT_EQ(t->EncodeWordpieces("hello[MASK]world [SEP]"),
            ToyIds({"hello", "[MASK]", "world", "[SEP]"}));
  // Case-sensitive and exact: "[mask]" is text (punctuation + word + punctuation).
  EXPECT_EQ(t->EncodeWordpieces("[mask]").size(), 3u);
}

TEST(WordpieceTokenizerTest, EncodeAddsClsSepAndTruncates) {
  const auto t = Toy({.max_tokens = 4});
  EXPECT_EQ(t->Encode(""), ToyIds({"[CLS]", "[SEP]"}));
  EXPECT_EQ(t->Encode(" \n\t "), ToyIds({"[CLS]", "[SEP]"}));
  EXPECT_EQ(t->Encode("hello world hello world"), ToyIds({"[CLS]", "hello", "world", "[SEP]"}));
  EXPECT_EQ(t->Encode("unaffable"), ToyIds({"[CLS]", "un", "##aff", "[SEP]"}));
}

TEST(WordpieceTokenizerTest, RejectsBadVocabularies) {
  EXPECT_EQ(WordpieceTokenizer::FromTokens({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WordpieceTokenizer::FromTokens({"[UNK]", "[CLS]", "[SEP]", "a", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WordpieceTokenizer::FromTokens({"[UNK]", "[CLS]", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WordpieceTokenizer::FromTokens(ToyTokens(), {.max_tokens = 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const auto missing = WordpieceTokenizer::Load("/nonexistent/vocab.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(testing::Contains(missing.status().message(), "/nonexistent/vocab.txt"));
}

TEST(WordpieceTokenizerTest, LoadsVocabFileWithCrLf) {
  const std::string path = testing::TempPath("vocab.txt");
  const std::string text = "[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n";
  testing::WriteFileBytes(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  const auto t = WordpieceTokenizer::Load(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 4);
  EXPECT_EQ((*t)->Encode("Hello"), (Ids{1, 3, 2}));
}

// ---- the real vocabulary against sentence-transformers' tokenizer ----

TEST(WordpieceTokenizerTest, MatchesReferenceIdsOnGoldenTexts) {
  ASSERT_TRUE(testing::MiniLmPresent());
  const nlohmann::json golden = testing::LoadMiniLmGolden();
  ASSERT_TRUE(golden.is_object()) << "tests/testdata/embedding/minilm_golden.json unreadable";
  const auto t = WordpieceTokenizer::Load(testing::MiniLmDir() + "/vocab.txt",
                                          {.max_tokens = golden["max_seq_length"].get<int>()});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 30522);
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ((*t)->Encode(text), c["ids"].get<Ids>()) << "text: " << text;
  }
}

}  // namespace
}  // namespace troupe
