// Compares Tokenizer with llama.cpp on real models: tests/testdata/tokenizer_golden.json (made by
// scripts/golden/make_tokenizer_golden.py) for stories260K (SentencePiece), SmolLM2 (GPT-2 BPE,
// "smollm" pre-tokenizer) and SmolLM2's vocabulary re-labelled with the Llama-3, Qwen2, GPT-2
// and default pre-tokenizers; plus the stories260K greedy golden from the shared folder.
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/formats/gguf.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

using nlohmann::json;

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string ModelPath(const std::string& name) {
  if (name == "stories260K.gguf") return testing::StoriesPath();
  return std::string(TROUPE_SOURCE_DIR) + "/models/" + name;
}

// Loads the model's tokenizer; a non-null `pre_override` replaces tokenizer.ggml.pre.
std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& path, const json& pre_override = {}) {
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto data = Tokenizer::ReadVocab(**file);
  EXPECT_TRUE(data.ok()) << data.status();
  if (!data.ok()) return nullptr;
  if (pre_override.is_string()) data->pre = pre_override.get<std::string>();
  auto tok = Tokenizer::FromVocab(*std::move(data));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

uint64_t Fnv1a(uint64_t h, std::string_view bytes) {
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

// Same recipe as make_tokenizer_golden.py: per id, 4-byte little-endian length, then the bytes.
std::string PiecesHash(const Tokenizer& tok, bool render_special) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (TokenId id = 0; id < tok.vocab_size(); ++id) {
    const std::string piece = tok.TokenBytes(id, render_special);
    const uint32_t n = static_cast<uint32_t>(piece.size());
    const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                         static_cast<char>(n >> 16), static_cast<char>(n >> 24)};
    h = Fnv1a(Fnv1a(h, std::string_view(len, 4)), piece);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

class TokenizerGoldenTest : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() {
    golden_ = new json(
        ReadJson(std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/tokenizer_golden.json"));
  }
  static void TearDownTestSuite() {
    delete golden_;
    golden_ = nullptr;
  }
  const json& model() const { return (*golden_)["models"][GetParam()]; }
  std::unique_ptr<Tokenizer> Load() const {
    return LoadTokenizer(ModelPath(model()["model"]), model()["pre_override"]);
  }
  static json* golden_;
};
json* TokenizerGoldenTest::golden_ = nullptr;

TEST_P(TokenizerGoldenTest, VocabularyMatchesLlamaCpp) {
  auto tok = Load();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), model()["n_vocab"].get<int>());
  EXPECT_EQ(tok->bos_id(), model()["bos"].get<int>());
  EXPECT_EQ(tok->eos_id(), model()["eos"].get<int>());
  EXPECT_EQ(tok->add_bos(), model()["add_bos"].get<bool>());
  std::vector<int> eog;
  for (TokenId id = 0; id < tok->vocab_size(); ++id) {
    if (tok->IsEndOfGeneration(id)) eog.push_back(id);
  }
  EXPECT_EQ(eog, model()["eog_ids"].get<std::vector<int>>());
  EXPECT_EQ(PiecesHash(*tok, false), model()["pieces_fnv1a64"].get<std::string>());
  EXPECT_EQ(PiecesHash(*tok, true), model()["pieces_special_fnv1a64"].get<std::string>());
}

TEST_P(TokenizerGoldenTest, EncodeAndDecodeMatchLlamaCpp) {
  auto tok = Load();
  ASSERT_NE(tok, nullptr);
  ASSERT_GE(model()["cases"].size(), 30u);
  for (const json& c : model()["cases"]) {
    const std::string text = c["text_in"];
    SCOPED_TRACE(::testing::Message() << "text_in=" << ::testing::PrintToString(text));
    const std::vector<TokenId> ids_special = tok->Encode(text, /*add_bos=*/true,
                                                         /*parse_special=*/true);
    EXPECT_EQ(ids_special, c["ids_special"].get<std::vector<TokenId>>());
    EXPECT_EQ(tok->Encode(text, /*add_bos=*/false, /*parse_special=*/false),
              c["ids_plain"].get<std::vector<TokenId>>());
    EXPECT_EQ(tok->Decode(ids_special), c["text"].get<std::string>());
    std::string rendered;
    for (TokenId id : ids_special) rendered += tok->TokenBytes(id, /*render_special=*/true);
    EXPECT_EQ(rendered, c["text_special"].get<std::string>());
  }
}

// Indices into "models" of tokenizer_golden.json, in the order the script writes them.
constexpr const char* kGoldenModels[] = {"Stories260K",    "SmolLM2",       "SmolLM2AsLlama3",
                                         "SmolLM2AsQwen2", "SmolLM2AsGpt2", "SmolLM2AsDefault"};

TEST(TokenizerGoldenFileTest, ListsTheExpectedModels) {
  const json golden =
      ReadJson(std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/tokenizer_golden.json");
  ASSERT_EQ(golden["models"].size(), std::size(kGoldenModels));
  EXPECT_EQ(golden["models"][0]["model"], "stories260K.gguf");
  EXPECT_EQ(golden["models"][2]["pre_override"], "llama-bpe");
  EXPECT_EQ(golden["models"][3]["pre_override"], "qwen2");
  EXPECT_EQ(golden["models"][4]["pre_override"], "gpt-2");
  EXPECT_EQ(golden["models"][5]["pre_override"], "default");
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerGoldenTest,
                         ::testing::Range(0, static_cast<int>(std::size(kGoldenModels))),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(kGoldenModels[info.param]);
                         });

// The shared greedy golden: prompt_tokens (BOS first) and the text of the greedy continuation.
TEST(TokenizerGreedyGoldenTest, Stories260KPromptsAndContinuations) {
  auto tok = LoadTokenizer(testing::StoriesPath());
  ASSERT_NE(tok, nullptr);
  const json golden = ReadJson(testing::StoriesGoldenPath());
  ASSERT_FALSE(golden["cases"].empty());
  for (const json& c : golden["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    EXPECT_EQ(tok->Encode(c["prompt"].get<std::string>(), /*add_bos=*/true,
                          /*parse_special=*/false),
              c["prompt_tokens"].get<std::vector<TokenId>>());
    const auto greedy = c["greedy_tokens"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok->Decode(greedy), c["greedy_text"].get<std::string>());
    StreamingDetokenizer stream(*tok);
    std::string streamed;
    for (TokenId id : greedy) streamed += stream.Push(id);
    streamed += stream.Flush();
    EXPECT_EQ(streamed, c["greedy_text"].get<std::string>());
  }
}

}  // namespace
}  // namespace troupe
