// Dummy load format: shape configs (smollm2-135m against the real GGUF), deterministic seeded
// weights independent of the thread count, the byte-level tokenizer, and an engine serving
// dummy smollm2-135m end to end.
#include "engine/model/dummy_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/engine.h"
#include "engine/formats/gguf.h"
#include "gtest/gtest.h"
#include "kernels/ggml_types.h"
#include "tests/testing/assertions.h"
#include "tests/testing/greedy.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

using ::troupe::testing::Contains;

// All bytes of every distinct matrix of `w`, in LayerWeights order.
std::vector<const MatrixView*> Matrices(const ModelWeights& w) {
  std::vector<const MatrixView*> out = {&w.token_embd};
  if (w.output.data != w.token_embd.data) out.push_back(&w.output);
  for (const LayerWeights& l : w.layers) {
    for (const MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      out.push_back(m);
    }
  }
  return out;
}

bool SameBytes(const ModelWeights& a, const ModelWeights& b) {
  const auto ma = Matrices(a), mb = Matrices(b);
  if (ma.size() != mb.size()) return false;
  for (size_t i = 0; i < ma.size(); ++i) {
    if (ma[i]->rows != mb[i]->rows || ma[i]->cols != mb[i]->cols) return false;
    if (std::memcmp(ma[i]->data, mb[i]->data, ma[i]->rows * ma[i]->cols * 2) != 0) return false;
  }
  return true;
}

// A small valid config (2 layers) so the weight tests stay fast.
ModelConfig TinyConfig() {
  ModelConfig c = *DummyModelConfig("smollm2-135m");
  c.vocab_size = 1000;
  c.num_layers = 2;
  c.tied_embeddings = false;
  return c;
}

// ---- configs ----

TEST(DummyModelTest, Llama3Config) {
  absl::StatusOr<ModelConfig> c = DummyModelConfig("llama-3-8b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "llama");
  EXPECT_EQ(c->name, "dummy-llama-3-8b");
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->dim, 4096);
  EXPECT_EQ(c->num_layers, 32);
  EXPECT_EQ(c->num_heads, 32);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->ffn_dim, 14336);
  EXPECT_EQ(c->context_length, 8192);
  EXPECT_FLOAT_EQ(c->rope.theta, 500000.0f);
  EXPECT_EQ(c->rope.rot_dim, 128);
  EXPECT_EQ(c->rope.head_dim, 128);
  EXPECT_FALSE(c->rope.neox);
  EXPECT_EQ(c->rope.scaling, RopeScaling::kNone);
  EXPECT_FLOAT_EQ(c->rms_eps, 1e-5f);
  EXPECT_FALSE(c->tied_embeddings);
  // Meta's "8B": 8,030,261,248 parameters.
  EXPECT_EQ(c->num_parameters, 8030261248);
}

TEST(DummyModelTest, Llama31Config) {
  absl::StatusOr<ModelConfig> c = DummyModelConfig("llama-3.1-8b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "dummy-llama-3.1-8b");
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->dim, 4096);
  EXPECT_EQ(c->num_layers, 32);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->ffn_dim, 14336);
  EXPECT_EQ(c->context_length, 131072);
  EXPECT_FLOAT_EQ(c->rope.theta, 500000.0f);
  EXPECT_EQ(c->rope.scaling, RopeScaling::kLlama3);
  EXPECT_FLOAT_EQ(c->rope.factor, 8.0f);
  EXPECT_FLOAT_EQ(c->rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c->rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c->rope.original_context, 8192);
  EXPECT_EQ(c->num_parameters, 8030261248 + 64);  // + rope_freqs.weight [64]
}

TEST(DummyModelTest, SmolLm2ConfigMatchesRealGguf) {
  absl::StatusOr<ModelConfig> c = DummyModelConfig("smollm2-135m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "dummy-smollm2-135m");
  EXPECT_EQ(c->vocab_size, 49152);
  EXPECT_EQ(c->dim, 576);
  EXPECT_EQ(c->num_layers, 30);
  EXPECT_EQ(c->num_heads, 9);
  EXPECT_EQ(c->num_kv_heads, 3);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->ffn_dim, 1536);
  EXPECT_EQ(c->context_length, 8192);
  EXPECT_TRUE(c->tied_embeddings);

  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<ModelConfig> real = ModelConfigFromGguf(**file);
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_EQ(c->architecture, real->architecture);
  EXPECT_EQ(c->vocab_size, real->vocab_size);
  EXPECT_EQ(c->dim, real->dim);
  EXPECT_EQ(c->num_layers, real->num_layers);
  EXPECT_EQ(c->num_heads, real->num_heads);
  EXPECT_EQ(c->num_kv_heads, real->num_kv_heads);
  EXPECT_EQ(c->head_dim, real->head_dim);
  EXPECT_EQ(c->ffn_dim, real->ffn_dim);
  EXPECT_EQ(c->context_length, real->context_length);
  EXPECT_FLOAT_EQ(c->rms_eps, real->rms_eps);
  EXPECT_FLOAT_EQ(c->rope.theta, real->rope.theta);
  EXPECT_EQ(c->rope.rot_dim, real->rope.rot_dim);
  EXPECT_EQ(c->rope.head_dim, real->rope.head_dim);
  EXPECT_EQ(c->rope.neox, real->rope.neox);
  EXPECT_EQ(c->rope.scaling, real->rope.scaling);
  EXPECT_EQ(c->tied_embeddings, real->tied_embeddings);
  EXPECT_EQ(c->num_parameters, real->num_parameters);
}

TEST(DummyModelTest, UnknownShapeNamesKnownShapes) {
  absl::StatusOr<ModelConfig> c = DummyModelConfig("gpt-5");
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "gpt-5"));
  for (const std::string& shape : DummyModelShapes()) {
    EXPECT_TRUE(Contains(c.status().message(), shape));
  }
  EXPECT_TRUE(Contains(c.status().message(), "llama-3-8b"));
  EXPECT_TRUE(Contains(c.status().message(), "smollm2-135m"));
}

// ---- weights ----

TEST(DummyModelTest, WeightsDeterministicForSeedAndThreadCount) {
  const ModelConfig config = TinyConfig();
  auto a = DummyWeights::Create(config, /*seed=*/7, /*num_threads=*/1);
  auto b = DummyWeights::Create(config, /*seed=*/7, /*num_threads=*/3);
  auto c = DummyWeights::Create(config, /*seed=*/8, /*num_threads=*/2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(SameBytes((*a)->weights(), (*b)->weights()));
  EXPECT_FALSE(SameBytes((*a)->weights(), (*c)->weights()));
  // Not merely equal as a whole: every matrix differs from its counterpart of another seed.
  const auto ma = Matrices((*a)->weights()), mc = Matrices((*c)->weights());
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_NE(std::memcmp(ma[i]->data, mc[i]->data, ma[i]->rows * ma[i]->cols * 2), 0) << i;
  }
}

TEST(DummyModelTest, WeightsShapesRangeAndSpread) {
  const ModelConfig config = TinyConfig();
  auto w = DummyWeights::Create(config, /*seed=*/0, /*num_threads=*/2);
  ASSERT_TRUE(w.ok()) << w.status();
  const ModelWeights& mw = (*w)->weights();
  EXPECT_EQ(mw.token_embd.rows, 1000);
  EXPECT_EQ(mw.token_embd.cols, 576);
  EXPECT_NE(mw.output.data, mw.token_embd.data);  // untied
  ASSERT_EQ(mw.layers.size(), 2u);
  EXPECT_EQ(mw.layers[0].wq.rows, 576);
  EXPECT_EQ(mw.layers[0].wk.rows, 192);
  EXPECT_EQ(mw.layers[0].w_down.cols, 1536);
  EXPECT_EQ(mw.output_norm, std::vector<float>(576, 1.0f));
  EXPECT_EQ(mw.layers[1].attn_norm, std::vector<float>(576, 1.0f));
  EXPECT_EQ(mw.layers[1].ffn_norm, std::vector<float>(576, 1.0f));

  int64_t total_elements = 0;
  for (const MatrixView* m : Matrices(mw)) {
    ASSERT_EQ(m->type, GgmlType::kBF16);
    const auto* bits = static_cast<const Bf16*>(m->data);
    const int64_t n = m->rows * m->cols;
    total_elements += n;
    double sum = 0, sum_sq = 0;
    float lo = 1, hi = -1;
    for (int64_t i = 0; i < n; ++i) {
      const float v = Bf16ToFp32(bits[i]);
      ASSERT_LE(std::fabs(v), DummyWeights::kRange * 1.01f) << i;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
    const double mean = sum / n, std_dev = std::sqrt(sum_sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.002);
    EXPECT_NEAR(std_dev, 0.02, 0.001);
    EXPECT_LT(lo, -0.03f);
    EXPECT_GT(hi, 0.03f);
  }
  EXPECT_EQ((*w)->num_bytes(), 2 * total_elements);
}

TEST(DummyModelTest, TiedOutputIsTokenEmbedding) {
  ModelConfig config = TinyConfig();
  config.tied_embeddings = true;
  auto w = DummyWeights::Create(config, 0, 2);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->weights().output.data, (*w)->weights().token_embd.data);
  // Tied and untied number their layers alike: the layers' bytes agree.
  auto untied = DummyWeights::Create(TinyConfig(), 0, 2);
  ASSERT_TRUE(untied.ok());
  const LayerWeights& a = (*w)->weights().layers[1];
  const LayerWeights& b = (*untied)->weights().layers[1];
  EXPECT_EQ(std::memcmp(a.w_up.data, b.w_up.data, a.w_up.rows * a.w_up.cols * 2), 0);
}

TEST(DummyModelTest, FillsSmolLm2Quickly) {
  const ModelConfig config = *DummyModelConfig("smollm2-135m");
  const auto start = std::chrono::steady_clock::now();
  auto w = DummyWeights::Create(config, 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->num_bytes(), 2 * (config.num_parameters - config.dim -
                                    2 * static_cast<int64_t>(config.num_layers) * config.dim));
  std::printf("filled smollm2-135m (%lld MiB) in %.3f s\n",
              static_cast<long long>((*w)->num_bytes() >> 20), seconds);
  EXPECT_LT(seconds, 20.0);
}

// ---- tokenizer ----

TEST(DummyModelTest, TokenizerIsByteLevel) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = DummyTokenizer(49152);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 49152);
  EXPECT_EQ((*tok)->eos_id(), 256);
  EXPECT_TRUE((*tok)->IsEndOfGeneration(256));
  EXPECT_FALSE((*tok)->add_bos());
  const std::string text = "Hello, wörld!\n  \xF0\x9F\x98\x80 <dummy_300>";
  const std::vector<TokenId> ids = (*tok)->Encode(text, /*add_bos=*/true, /*parse_special=*/true);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(ids[i], static_cast<uint8_t>(text[i]));
  EXPECT_EQ((*tok)->Decode(ids), text);
  EXPECT_EQ((*tok)->Encode("<|endoftext|>", false, true), std::vector<TokenId>{256});
  EXPECT_EQ((*tok)->TokenBytes(300), "<dummy_300>");
  EXPECT_EQ((*tok)->TokenBytes(256), "");
  EXPECT_EQ(DummyTokenizer(256).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- engine ----

std::unique_ptr<Engine> MakeDummyEngine(uint64_t seed) {
  EngineOptions options;
  options.load_format = "dummy";
  options.model_path = "smollm2-135m";
  options.dummy_seed = seed;
  options.device = "cpu";
  options.num_threads = 2;
  options.kv_cache_bytes = 16ll << 20;
  auto engine = Engine::Create(options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

TEST(DummyModelTest, EngineServesDummySmolLm2) {
  std::unique_ptr<Engine> a = MakeDummyEngine(/*seed=*/1);
  ASSERT_NE(a, nullptr);
  const ModelInfo& info = a->model_info();
  EXPECT_EQ(info.name, "dummy-smollm2-135m");
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.vocab_size, 49152);
  EXPECT_EQ(info.hidden_dim, 576);
  EXPECT_EQ(info.file_bytes, 0u);
  EXPECT_EQ(info.chat_family, ChatFamily::kRaw);
  EXPECT_GT(info.num_parameters, 134000000);

  const std::vector<TokenId> prompt = a->tokenizer().Encode("Once upon a time", true, false);
  const std::vector<TokenId> tokens = testing::GreedyTokens(*a, prompt, 8);
  ASSERT_EQ(tokens.size(), 8u);
  for (TokenId t : tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 49152);
  }
  a.reset();  // one engine at a time: 2 cores
  std::unique_ptr<Engine> b = MakeDummyEngine(/*seed=*/1);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(testing::GreedyTokens(*b, prompt, 8), tokens);
}

TEST(DummyModelTest, EngineRejectsUnknownShapeAndFormat) {
  EngineOptions options;
  options.load_format = "dummy";
  options.model_path = "llama-9000";
  auto engine = Engine::Create(options);
  ASSERT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(engine.status().message(), "smollm2-135m"));

  options.load_format = "safetensors";
  engine = Engine::Create(options);
  ASSERT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(engine.status().message(), "safetensors"));
}

}  // namespace
}  // namespace troupe
