// tokenizer.json against the `tokenizers` library and chat templates against jinja2: the tiny
// Hugging Face folders' BPE tokenizers (byte-level with the Llama 3, GPT-2 and Qwen2 split rules;
// SentencePiece-style with byte fallback; trained by scripts/golden/make_hf_models.py) must
// encode every corpus string to the ids `tokenizers` gave, and each folder's template, detected and rendered by troupe's family renderer, must
// equal what jinja2 rendered from the template string (tests/testdata/hf/golden.json).
#include "engine/tokenizer/hf_tokenizer.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/tokenizer/chat_template.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/assertions.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

using ::troupe::testing::Contains;

const nlohmann::json& Golden() {
  static const auto* golden = [] {
    std::ifstream in(testing::HfModelDir() + "/golden.json");
    return new nlohmann::json(in.good() ? nlohmann::json::parse(in) : nlohmann::json());
  }();
  return *golden;
}

std::unique_ptr<Tokenizer> Load(const std::string& dir) {
  auto files = ReadHfTokenizerFiles(testing::HfModelDir() + "/" + dir);
  EXPECT_TRUE(files.ok()) << files.status();
  if (!files.ok()) return nullptr;
  auto tokenizer = Tokenizer::FromVocab(std::move(files->vocab));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

// Every string of one golden entry (a model folder or a tokenizer-only folder).
void ExpectSameIds(const nlohmann::json& entry) {
  SCOPED_TRACE(entry["name"].get<std::string>());
  std::unique_ptr<Tokenizer> tok = Load(entry["dir"].get<std::string>());
  ASSERT_NE(tok, nullptr);
  int checked = 0;
  for (const auto& t : entry["tokenizer"]) {
    const std::string text = t["text"].get<std::string>();
    SCOPED_TRACE(text.substr(0, 60));
    const auto want = t["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok->Encode(text, /*add_bos=*/true, /*parse_special=*/true), want);
    const auto pieces = t["tokens"].get<std::vector<std::string>>();
    ASSERT_EQ(pieces.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(tok->TokenText(want[i]), pieces[i]);
    ++checked;
  }
  EXPECT_GE(checked, 16);
}

// Every string, Unicode edge cases and special-token texts included: the same ids as
// `tokenizers` (with add_special_tokens, so BOS where the post-processor adds one), for the
// byte-level rules (GPT-2, Llama 3, Qwen2 with NFC) and the SentencePiece-style ones (legacy
// "▁" normalizer and Metaspace "first", byte fallback).
TEST(HfTokenizerTest, EncodesAsTokenizersDoes) {
  ASSERT_TRUE(Golden().contains("models") && Golden().contains("tokenizers"));
  for (const auto& m : Golden()["models"]) ExpectSameIds(m);
  ASSERT_EQ(Golden()["tokenizers"].size(), 2u);
  for (const auto& t : Golden()["tokenizers"]) ExpectSameIds(t);
}

// A SentencePiece-style vocabulary decodes "▁" as a space and <0xXX> tokens as their bytes.
TEST(HfTokenizerTest, SentencePieceStyleDecodes) {
  std::unique_ptr<Tokenizer> tok = Load("mistral-f16");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), Tokenizer::Kind::kSentencePiece);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->TokenBytes(tok->bos_id(), true), "<s>");
  const std::string text = "The river \xE6\x97\xA5\xF0\x9F\x99\x82 flows";
  EXPECT_EQ(tok->Decode(tok->Encode(text, false, false)), " " + text);
}

TEST(HfTokenizerTest, SpecialTokensFromTheConfigFiles) {
  std::unique_ptr<Tokenizer> llama = Load("llama-f32");
  ASSERT_NE(llama, nullptr);
  EXPECT_TRUE(llama->add_bos());
  EXPECT_EQ(llama->TokenBytes(llama->bos_id(), true), "<|begin_of_text|>");
  EXPECT_EQ(llama->TokenBytes(llama->eos_id(), true), "<|eot_id|>");
  EXPECT_TRUE(llama->IsEndOfGeneration(llama->eos_id()));
  // A control token is not rendered without render_special; a user-defined one always is.
  EXPECT_EQ(llama->TokenBytes(llama->eos_id()), "");
  const std::vector<TokenId> added = llama->Encode("<|user_defined|>", false, false);
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(llama->TokenBytes(added[0]), "<|user_defined|>");

  std::unique_ptr<Tokenizer> qwen = Load("qwen2-f32");
  ASSERT_NE(qwen, nullptr);
  EXPECT_FALSE(qwen->add_bos());
  EXPECT_EQ(qwen->bos_id(), -1);  // the folder names none: not the gpt2 default id 11
  EXPECT_EQ(qwen->TokenBytes(qwen->eos_id(), true), "<|im_end|>");
  // Client text never becomes a control token; template text does.
  EXPECT_GT(qwen->Encode("<|im_start|>", false, /*parse_special=*/false).size(), 1u);
  EXPECT_EQ(qwen->Encode("<|im_start|>", false, /*parse_special=*/true).size(), 1u);
}

// Each golden render (conversation, generation prompt or not, jinja2's text) equals the family
// renderer's.
void ExpectRendersAsJinja2(const ChatTemplate& chat, const nlohmann::json& renders) {
  for (const auto& c : renders) {
    std::vector<ChatMessage> messages;
    for (const auto& msg : c["messages"]) {
      messages.push_back({msg["role"].get<std::string>(), msg["content"].get<std::string>()});
    }
    const bool gen = c["add_generation_prompt"].get<bool>();
    SCOPED_TRACE(c["messages"].dump() + (gen ? " +gen" : ""));
    EXPECT_EQ(RenderChat(chat, messages, gen).Flat(), c["text"].get<std::string>());
  }
}

// The template string each folder carries is detected as its family, and the family renderer
// gives what jinja2 renders from the string itself.
TEST(HfTokenizerTest, ChatTemplateRendersAsJinja2Does) {
  ASSERT_TRUE(Golden().contains("models"));
  for (const auto& m : Golden()["models"]) {
    SCOPED_TRACE(m["name"].get<std::string>());
    auto files = ReadHfTokenizerFiles(testing::HfModelDir() + "/" + m["dir"].get<std::string>());
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->chat_template.empty());
    const ChatTemplate chat = ParseChatTemplate(files->chat_template);
    EXPECT_NE(chat.family, ChatFamily::kRaw);
    ASSERT_GE(m["chat"].size(), 4u);
    ExpectRendersAsJinja2(chat, m["chat"]);
  }
}

// A real template (SmolLM2's, with its default system prompt), as jinja2 renders it.
TEST(HfTokenizerTest, RealChatTemplateRendersAsJinja2Does) {
  ASSERT_TRUE(Golden().contains("templates"));
  ASSERT_FALSE(Golden()["templates"].empty());
  for (const auto& t : Golden()["templates"]) {
    SCOPED_TRACE(t["name"].get<std::string>());
    const ChatTemplate chat = ParseChatTemplate(t["template"].get<std::string>());
    EXPECT_EQ(chat.family, ChatFamily::kChatMl);
    EXPECT_FALSE(chat.default_system.empty());
    ExpectRendersAsJinja2(chat, t["chat"]);
  }
}

nlohmann::json TokenizerJson(const std::string& dir) {
  std::ifstream in(testing::HfModelDir() + "/" + dir + "/tokenizer.json");
  return nlohmann::json::parse(in);
}

absl::Status VocabStatus(const nlohmann::json& tokenizer) {
  return VocabFromTokenizerJson(tokenizer, nlohmann::json(), nlohmann::json(), "t.json").status();
}

TEST(HfTokenizerTest, RefusesWhatItDoesNotImplement) {
  nlohmann::json unigram = TokenizerJson("llama-f32");
  unigram["model"]["type"] = "Unigram";
  EXPECT_TRUE(Contains(VocabStatus(unigram).message(), "model type 'Unigram'"));

  nlohmann::json regex = TokenizerJson("llama-f32");
  regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+";
  const absl::Status s = VocabStatus(regex);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "split regex \\p{L}+")) << s;

  nlohmann::json fallback = TokenizerJson("tokenizers/gpt2");
  fallback["model"]["byte_fallback"] = true;  // byte fallback under a ByteLevel pre-tokenizer
  EXPECT_TRUE(Contains(VocabStatus(fallback).message(), "SentencePiece-style"));

  nlohmann::json lowercase = TokenizerJson("tokenizers/gpt2");
  lowercase["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_TRUE(Contains(VocabStatus(lowercase).message(), "normalizer"));

  nlohmann::json scheme = TokenizerJson("tokenizers/spm-first");
  scheme["pre_tokenizer"]["prepend_scheme"] = "sometimes";
  EXPECT_TRUE(Contains(VocabStatus(scheme).message(), "prepend_scheme 'sometimes'"));

  nlohmann::json bad_merge = TokenizerJson("tokenizers/gpt2");
  bad_merge["model"]["merges"][0] = 7;
  EXPECT_EQ(VocabStatus(bad_merge).code(), absl::StatusCode::kInvalidArgument);
}

// tokenizers before 0.20 wrote merges as "a b" strings: the same vocabulary either way.
TEST(HfTokenizerTest, ReadsBothMergeSpellings) {
  nlohmann::json pairs = TokenizerJson("tokenizers/gpt2");
  nlohmann::json strings = pairs;
  for (auto& m : strings["model"]["merges"]) {
    m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  auto a = VocabFromTokenizerJson(pairs, nlohmann::json(), nlohmann::json(), "a");
  auto b = VocabFromTokenizerJson(strings, nlohmann::json(), nlohmann::json(), "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->merges, b->merges);
  EXPECT_FALSE(a->merges.empty());
}

}  // namespace
}  // namespace troupe
