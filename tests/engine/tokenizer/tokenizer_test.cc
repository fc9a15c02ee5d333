// Tokenizer behaviour on small hand-built vocabularies (Tokenizer::FromVocab): merge order, byte
// fallback, special tokens, end-of-generation detection and metadata validation.
#include "engine/tokenizer/tokenizer.h"

#include <string>
#include <vector>

#include "engine/tokenizer/unicode.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using Ids = std::vector<TokenId>;
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

// SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then `pieces` with `scores`.
VocabData SpmVocab(const std::vector<std::string>& pieces, const std::vector<float>& scores) {
  VocabData d;
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>"};
  d.token_types = {kUnknown, kControl, kControl};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    d.tokens.push_back(name);
    d.token_types.push_back(kByte);
  }
  d.scores.assign(d.tokens.size(), 0.0f);
  for (size_t i = 0; i < pieces.size(); ++i) {
    d.tokens.push_back(pieces[i]);
    d.token_types.push_back(kNormal);
    d.scores.push_back(scores[i]);
  }
  return d;
}

std::unique_ptr<Tokenizer> Build(VocabData d) {
  auto tok = Tokenizer::FromVocab(std::move(d));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

// Ids of `texts` in `tok`, for readable expectations.
Ids IdsOf(const Tokenizer& tok, const std::vector<std::string>& texts) {
  Ids ids;
  for (const std::string& t : texts) {
    ids.push_back(tok.Find(t));
    EXPECT_GE(ids.back(), 0) << t;
  }
  return ids;
}

const std::string kU = "\xE2\x96\x81";  // '▁'

TEST(SpmTokenizerTest, HigherScoringPairMergesFirst) {
  const std::vector<std::string> pieces = {kU, "a", "b", "c", kU + "a", "ab", "bc", kU + "ab"};
  // "bc" outscores "ab": ▁ a b c -> ▁ a bc -> ▁a bc.
  auto tok = Build(SpmVocab(pieces, {-1, -1, -1, -1, -3, -2, -1.5f, -0.5f}));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("abc", false, false), IdsOf(*tok, {kU + "a", "bc"}));
  // "ab" outscores "bc": ▁ a b c -> ▁ ab c -> ▁ab c.
  tok = Build(SpmVocab(pieces, {-1, -1, -1, -1, -3, -1.5f, -2, -0.5f}));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("abc", false, false), IdsOf(*tok, {kU + "ab", "c"}));
}

TEST(SpmTokenizerTest, EqualScoresMergeLeftmostFirst) {
  VocabData d = SpmVocab({"a", "aa"}, {-1, -1});
  d.add_space_prefix = false;
  auto tok = Build(std::move(d));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("aaa", false, false), IdsOf(*tok, {"aa", "a"}));
}

TEST(SpmTokenizerTest, UnknownCharactersFallBackToByteTokens) {
  auto tok = Build(SpmVocab({kU, "a"}, {-1, -1}));
  ASSERT_NE(tok, nullptr);
  // "é" is C3 A9; "z" is 7A.
  EXPECT_EQ(tok->Encode("a\xC3\xA9z", false, false),
            IdsOf(*tok, {kU, "a", "<0xC3>", "<0xA9>", "<0x7A>"}));
  EXPECT_EQ(tok->Decode(tok->Encode("a\xC3\xA9z", false, false)), " a\xC3\xA9z");
}

TEST(SpmTokenizerTest, BosAndSpacePrefixFollowLlamaCpp) {
  auto tok = Build(SpmVocab({kU, "a", "b", kU + "a"}, {-1, -1, -1, -0.5f}));
  ASSERT_NE(tok, nullptr);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->Encode("a", true, false), (Ids{1, tok->Find(kU + "a")}));
  // A special token counts as a word start, so the text after it gets "▁" again.
  EXPECT_EQ(tok->Encode("a</s>a", false, true), (Ids{tok->Find(kU + "a"), 2, tok->Find(kU + "a")}));
  // Without parse_special, "</s>" is plain text.
  EXPECT_EQ(tok->Encode("</s>", false, false).size(), 5u);  // ▁ < / s >: byte tokens
  EXPECT_TRUE(tok->Encode("", false, false).empty());
  EXPECT_EQ(tok->Encode("", true, false), Ids{1});
}

TEST(SpmTokenizerTest, PiecesUndoTheSpaceMarkAndHideControlTokens) {
  auto tok = Build(SpmVocab({kU + "a" + kU + "b"}, {-1}));
  ASSERT_NE(tok, nullptr);
  const TokenId ab = tok->Find(kU + "a" + kU + "b");
  EXPECT_EQ(tok->TokenBytes(ab), " a b");
  EXPECT_EQ(tok->TokenText(ab), kU + "a" + kU + "b");
  EXPECT_EQ(tok->TokenBytes(1), "");
  EXPECT_EQ(tok->TokenBytes(1, /*render_special=*/true), "<s>");
  EXPECT_EQ(tok->TokenBytes(0, true), "<unk>");
  EXPECT_EQ(tok->TokenBytes(3 + 0x0A), "\n");  // <0x0A>
  EXPECT_EQ(tok->TokenBytes(-1), "");
  EXPECT_EQ(tok->TokenBytes(tok->vocab_size()), "");
  EXPECT_TRUE(tok->IsEndOfGeneration(2));
  EXPECT_FALSE(tok->IsEndOfGeneration(1));
}

// Byte-level BPE vocabulary: the 256 byte characters, then `extra` tokens.
VocabData BpeVocab(const std::vector<std::string>& extra, const std::vector<std::string>& merges,
                   const std::string& pre) {
  VocabData d;
  d.model = "gpt2";
  d.pre = pre;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::AppendUtf8(unicode::ByteToCodepoint(static_cast<uint8_t>(b)), &s);
    d.tokens.push_back(s);
  }
  d.token_types.assign(d.tokens.size(), kNormal);
  for (const std::string& t : extra) {
    d.tokens.push_back(t);
    d.token_types.push_back(kNormal);
  }
  d.merges = merges;
  return d;
}

const std::string kG = "\xC4\xA0";  // 'Ġ', the byte-level space

TEST(BpeTokenizerTest, LowestRankMergesFirstWhateverItsPosition) {
  // "ll" (rank 0) merges before "he" (rank 1) although it is further right.
  auto tok = Build(BpeVocab({"ll", "he", "hell", "hello", kG + "w"},
                            {"l l", "h e", "he ll", "hell o", kG + " w"}, "gpt-2"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("hello", false, false), IdsOf(*tok, {"hello"}));
  EXPECT_EQ(tok->Encode("hello wx", false, false), IdsOf(*tok, {"hello", kG + "w", "x"}));
  EXPECT_EQ(tok->Decode(tok->Encode("hello wx", false, false)), "hello wx");
  // Without "he ll" the word stops at "he" "ll" "o".
  tok = Build(BpeVocab({"ll", "he", "hell", "hello"}, {"l l", "h e", "hell o"}, "gpt-2"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("hello", false, false), IdsOf(*tok, {"he", "ll", "o"}));
}

TEST(BpeTokenizerTest, IgnoreMergesTakesWholeWordTokens) {
  // "abc" is a token but no merge reaches it; Llama-3's ignore_merges uses it anyway.
  auto gpt2 = Build(BpeVocab({"abc"}, {"x y"}, "gpt-2"));
  auto llama3 = Build(BpeVocab({"abc"}, {"x y"}, "llama-bpe"));
  ASSERT_NE(gpt2, nullptr);
  ASSERT_NE(llama3, nullptr);
  EXPECT_EQ(gpt2->Encode("abc", false, false), IdsOf(*gpt2, {"a", "b", "c"}));
  EXPECT_EQ(llama3->Encode("abc", false, false), IdsOf(*llama3, {"abc"}));
}

TEST(BpeTokenizerTest, SpecialTokensNeedParseSpecialButUserDefinedAlwaysMatch) {
  VocabData d = BpeVocab({}, {"x y"}, "gpt-2");
  d.tokens.push_back("<|im_start|>");
  d.token_types.push_back(kControl);
  d.tokens.push_back("<|im_end|>");
  d.token_types.push_back(kControl);
  d.tokens.push_back("<tool>");
  d.token_types.push_back(kUserDefined);
  auto tok = Build(std::move(d));
  ASSERT_NE(tok, nullptr);
  const TokenId start = tok->Find("<|im_start|>"), end = tok->Find("<|im_end|>"),
                tool = tok->Find("<tool>");
  EXPECT_EQ(tok->Encode("<|im_start|>hi<|im_end|>", false, true),
            (Ids{start, tok->Find("h"), tok->Find("i"), end}));
  const Ids plain = tok->Encode("<|im_start|>", false, false);
  EXPECT_EQ(plain.size(), std::string("<|im_start|>").size());  // one byte token each
  EXPECT_EQ(tok->Encode("a<tool>", false, false), (Ids{tok->Find("a"), tool}));
  EXPECT_EQ(tok->TokenBytes(tool), "<tool>");
  EXPECT_EQ(tok->TokenBytes(start), "");
  EXPECT_EQ(tok->TokenBytes(start, true), "<|im_start|>");
  // <|im_end|> is end-of-generation by its text, as in llama.cpp.
  EXPECT_TRUE(tok->IsEndOfGeneration(end));
  EXPECT_FALSE(tok->IsEndOfGeneration(start));
  // gpt2 vocabularies without explicit ids: llama.cpp's defaults (11) and no BOS by default.
  EXPECT_EQ(tok->bos_id(), 11);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->Encode("a", true, false), Ids{tok->Find("a")});
}

TEST(BpeTokenizerTest, PiecesUndoTheByteMap) {
  auto tok = Build(BpeVocab({kG + "caf\xC3\x83\xC2\xA9"}, {"x y"}, "gpt-2"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->TokenBytes(tok->Find(kG + "caf\xC3\x83\xC2\xA9")), " caf\xC3\xA9");  // " café"
  EXPECT_EQ(tok->TokenBytes(tok->Find("\xC4\x8A")), "\n");
}

TEST(FromVocabTest, RejectsMalformedMetadata) {
  VocabData unknown_model = SpmVocab({}, {});
  unknown_model.model = "bert";
  EXPECT_EQ(Tokenizer::FromVocab(unknown_model).status().code(),
            absl::StatusCode::kInvalidArgument);

  VocabData duplicate = SpmVocab({"a", "a"}, {0, 0});
  EXPECT_EQ(Tokenizer::FromVocab(duplicate).status().code(), absl::StatusCode::kInvalidArgument);

  VocabData short_scores = SpmVocab({"a"}, {0});
  short_scores.scores.pop_back();
  EXPECT_EQ(Tokenizer::FromVocab(short_scores).status().code(), absl::StatusCode::kInvalidArgument);

  VocabData no_merges = BpeVocab({}, {}, "gpt-2");
  EXPECT_EQ(Tokenizer::FromVocab(no_merges).status().code(), absl::StatusCode::kInvalidArgument);

  VocabData bad_pre = BpeVocab({}, {"x y"}, "no-such-pre");
  EXPECT_EQ(Tokenizer::FromVocab(bad_pre).status().code(), absl::StatusCode::kInvalidArgument);

  VocabData empty;
  empty.model = "llama";
  EXPECT_EQ(Tokenizer::FromVocab(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FromVocabTest, ExplicitSpecialIdsOverrideDefaultsWhenInRange) {
  VocabData d = SpmVocab({"a"}, {0});
  d.bos_id = 2;
  d.eos_id = 4294967295;  // out of range, as in stories260K's padding id: keeps the default
  d.add_bos = false;
  auto tok = Build(std::move(d));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_TRUE(tok->Encode("a", true, false) == tok->Encode("a", false, false));
}

}  // namespace
}  // namespace troupe
