// LoadModelWeights on the real models (offsets and values cross-checked with the `gguf` Python
// package) and on synthetic files for shape/type/missing-tensor errors.
#include "engine/model/weights.h"

#include "engine/formats/gguf.h"
#include "engine/model/model_config.h"
#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Contains;
using testing::GgufWriter;

struct Loaded {
  std::unique_ptr<GgufFile> file;
  ModelConfig config;
  absl::StatusOr<ModelWeights> weights;
};

Loaded Load(const std::string& path) {
  Loaded l;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return l;
  l.file = std::move(*file);
  auto config = ModelConfigFromGguf(*l.file);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return l;
  l.config = *config;
  l.weights = LoadModelWeights(*l.file, l.config);
  return l;
}

Loaded LoadWritten(const GgufWriter& w) {
  const std::string path = testing::TempPath("w.gguf");
  w.Write(path);
  Loaded l = Load(path);
  ::unlink(path.c_str());  // an open mapping outlives the name
  return l;
}

void ExpectMatrix(const MatrixView& m, GgmlType type, int64_t rows, int64_t cols) {
  EXPECT_EQ(m.type, type);
  EXPECT_EQ(m.rows, rows);
  EXPECT_EQ(m.cols, cols);
  EXPECT_NE(m.data, nullptr);
}

TEST(WeightsTest, Stories260KViewsPointIntoTheFile) {
  Loaded l = Load(testing::StoriesPath());
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  const ModelWeights& w = *l.weights;
  ExpectMatrix(w.token_embd, GgmlType::kF32, 512, 64);
  ExpectMatrix(w.output, GgmlType::kF32, 512, 64);
  // gguf-py absolute offsets: token_embd 14176, output 145504.
  EXPECT_EQ(
      static_cast<const uint8_t*>(w.output.data) - static_cast<const uint8_t*>(w.token_embd.data),
      145504 - 14176);
  ASSERT_EQ(w.layers.size(), 5u);
  for (const LayerWeights& layer : w.layers) {
    ExpectMatrix(layer.wq, GgmlType::kF32, 64, 64);
    ExpectMatrix(layer.wk, GgmlType::kF32, 32, 64);
    ExpectMatrix(layer.wv, GgmlType::kF32, 32, 64);
    ExpectMatrix(layer.wo, GgmlType::kF32, 64, 64);
    ExpectMatrix(layer.w_gate, GgmlType::kF32, 172, 64);
    ExpectMatrix(layer.w_up, GgmlType::kF32, 172, 64);
    ExpectMatrix(layer.w_down, GgmlType::kF32, 64, 172);
    EXPECT_EQ(layer.attn_norm.size(), 64u);
    EXPECT_EQ(layer.ffn_norm.size(), 64u);
  }
  // gguf-py: blk.0.attn_q at 276576 (data section at 14176).
  EXPECT_EQ(static_cast<const uint8_t*>(w.layers[0].wq.data) -
                static_cast<const uint8_t*>(w.token_embd.data),
            276576 - 14176);
  ASSERT_EQ(w.output_norm.size(), 64u);
  EXPECT_FLOAT_EQ(w.output_norm[0], 2.4583089351654053f);
  EXPECT_FLOAT_EQ(w.output_norm[2], 1.7504382133483887f);
  EXPECT_FLOAT_EQ(w.layers[0].attn_norm[1], 0.6754933595657349f);
}

TEST(WeightsTest, SmolLm2IsTiedAndQuantized) {
  Loaded l = Load(testing::SmolLmPath());
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  const ModelWeights& w = *l.weights;
  ExpectMatrix(w.token_embd, GgmlType::kQ8_0, 49152, 576);
  ExpectMatrix(w.output, GgmlType::kQ8_0, 49152, 576);
  EXPECT_EQ(w.output.data, w.token_embd.data);
  ASSERT_EQ(w.layers.size(), 30u);
  for (const LayerWeights& layer : w.layers) {
    ExpectMatrix(layer.wq, GgmlType::kQ4_1, 576, 576);
    ExpectMatrix(layer.wk, GgmlType::kQ4_1, 192, 576);
    ExpectMatrix(layer.wv, GgmlType::kQ4_1, 192, 576);
    ExpectMatrix(layer.wo, GgmlType::kQ4_1, 576, 576);
    ExpectMatrix(layer.w_gate, GgmlType::kQ4_1, 1536, 576);
    ExpectMatrix(layer.w_up, GgmlType::kQ4_1, 1536, 576);
    ExpectMatrix(layer.w_down, GgmlType::kQ4_1, 576, 1536);
  }
  // gguf-py values (the norms are F32 in this file).
  EXPECT_FLOAT_EQ(w.output_norm[1], 1.8203125f);
  EXPECT_FLOAT_EQ(w.layers[0].attn_norm[2], -0.019775390625f);
  EXPECT_FLOAT_EQ(w.layers[29].ffn_norm[0], 0.326171875f);
  // gguf-py: blk.29.ffn_down at 80630848, token_embd at 1785664.
  EXPECT_EQ(static_cast<const uint8_t*>(w.layers[29].w_down.data) -
                static_cast<const uint8_t*>(w.token_embd.data),
            80630848 - 1785664);
}

TEST(WeightsTest, TiedWhenOutputAbsent) {
  Loaded l = LoadWritten(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) { t.tied = true; }));
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  EXPECT_TRUE(l.config.tied_embeddings);
  EXPECT_EQ(l.weights->output.data, l.weights->token_embd.data);
  ExpectMatrix(l.weights->output, GgmlType::kF32, 32, 8);
  ExpectMatrix(l.weights->layers[1].wk, GgmlType::kF32, 4, 8);  // 1 kv head of 4
  // Values are i * 0.001 in file order.
  EXPECT_FLOAT_EQ(l.weights->output_norm[3], 0.003f);
}

TEST(WeightsTest, WrongShapeNamesTensorExpectedAndActual) {
  GgufWriter w = testing::MakeTinyLlama({});
  auto file_path = testing::TempPath("shape.gguf");
  w.Write(file_path);
  auto file = GgufFile::Open(file_path);
  ::unlink(file_path.c_str());
  ASSERT_TRUE(file.ok()) << file.status();
  auto config = ModelConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  ModelConfig wrong = *config;
  wrong.num_kv_heads = 2;  // file has 1: attn_k is [8, 4]
  auto weights = LoadModelWeights(**file, wrong);
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(weights.status().message(), "'blk.0.attn_k.weight' has dims [8, 4]"));
  EXPECT_TRUE(Contains(weights.status().message(), "expected [8, 8]"));

  ModelConfig vocab = *config;
  vocab.vocab_size = 33;
  weights = LoadModelWeights(**file, vocab);
  EXPECT_TRUE(Contains(weights.status().message(), "'token_embd.weight' has dims [8, 32]"));

  ModelConfig layers = *config;
  layers.num_layers = 1 << 30;  // e.g. a corrupt block_count: fails on blk.2, allocates nothing
  weights = LoadModelWeights(**file, layers);
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(weights.status().message(), "missing tensor 'blk.2.attn_q.weight'"));
}

TEST(WeightsTest, AcceptsQuantizedMatricesButNotQuantizedNorms) {
  const GgmlType q8 = GgmlType::kQ8_0;
  testing::TinyLlama m;
  m.dim = 32;
  m.layers = 1;
  m.heads = 2;
  m.kv_heads = 1;
  m.ffn = 32;
  m.types = {{"blk.0.attn_q.weight", q8}, {"token_embd.weight", q8}};
  Loaded ok = LoadWritten(testing::MakeTinyLlama(m));
  ASSERT_TRUE(ok.weights.ok()) << ok.weights.status();
  ExpectMatrix(ok.weights->layers[0].wq, q8, 32, 32);
  ExpectMatrix(ok.weights->token_embd, q8, 32, 32);
  ExpectMatrix(ok.weights->output, GgmlType::kF32, 32, 32);

  m.types = {{"blk.0.ffn_norm.weight", q8}};
  Loaded bad = LoadWritten(testing::MakeTinyLlama(m));
  EXPECT_EQ(bad.weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.weights.status().message(), "'blk.0.ffn_norm.weight'"));
  EXPECT_TRUE(Contains(bad.weights.status().message(), "expected F32, F16 or BF16"));
}

TEST(WeightsTest, ConvertsHalfPrecisionNorms) {
  testing::TinyLlama m;
  m.layers = 1;
  m.types = {{"blk.0.ffn_norm.weight", GgmlType::kF16},
             {"output_norm.weight", GgmlType::kBF16},
             {"blk.0.attn_v.weight", GgmlType::kBF16}};
  Loaded l = LoadWritten(testing::MakeTinyLlama(m));
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  ExpectMatrix(l.weights->layers[0].wv, GgmlType::kBF16, 4, 8);
  const std::vector<float>& ffn_norm = l.weights->layers[0].ffn_norm;
  const std::vector<float>& out_norm = l.weights->output_norm;
  ASSERT_EQ(ffn_norm.size(), 8u);
  ASSERT_EQ(out_norm.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(ffn_norm[i], 0.001f * i, 1e-3f * 0.001f * i) << i;  // fp16: 11-bit mantissa
    EXPECT_NEAR(out_norm[i], 0.001f * i, 8e-3f * 0.001f * i) << i;  // bf16: 8-bit mantissa
  }
  EXPECT_NE(ffn_norm[5], 0.0f);
}

TEST(WeightsTest, MissingTensorIsNamed) {
  Loaded l = LoadWritten(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) { t.layers = 2; }));
  ASSERT_TRUE(l.weights.ok()) << l.weights.status();
  ModelConfig more = l.config;
  more.num_layers = 3;
  auto weights = LoadModelWeights(*l.file, more);
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(weights.status().message(), "missing tensor 'blk.2.attn_q.weight'"));
}

}  // namespace
}  // namespace troupe
