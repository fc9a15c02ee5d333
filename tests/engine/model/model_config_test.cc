// ModelConfigFromGguf on the real models (values cross-checked with the `gguf` Python package)
// and on synthetic files for defaults, errors and RoPE scaling.
#include "engine/model/model_config.h"

#include <cmath>
#include <numbers>

#include "engine/formats/gguf.h"
#include "gtest/gtest.h"
#include "tests/testing/assertions.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

using testing::Contains;
using testing::GgufWriter;
using testing::TinyLlama;

absl::StatusOr<ModelConfig> ConfigOf(const GgufWriter& w) {
  const std::string path = testing::TempPath("m.gguf");
  w.Write(path);
  auto file = GgufFile::Open(path);
  ::unlink(path.c_str());  // an open mapping outlives the name
  if (!file.ok()) return file.status();
  return ModelConfigFromGguf(**file);
}

TEST(ModelConfigTest, Stories260K) {
  auto file = GgufFile::Open(testing::StoriesPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto c = ModelConfigFromGguf(**file);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "llama");
  EXPECT_EQ(c->name, "llama");
  EXPECT_EQ(c->vocab_size, 512);  // no llama.vocab_size: from the token list
  EXPECT_EQ(c->dim, 64);
  EXPECT_EQ(c->num_layers, 5);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->ffn_dim, 172);
  EXPECT_EQ(c->context_length, 128);
  EXPECT_FLOAT_EQ(c->rms_eps, 1e-5f);
  EXPECT_EQ(c->rope.head_dim, 8);
  EXPECT_EQ(c->rope.rot_dim, 8);
  EXPECT_EQ(c->rope.theta, 10000.0f);  // no freq_base key: default
  EXPECT_FALSE(c->rope.neox);
  EXPECT_EQ(c->rope.scaling, RopeScaling::kNone);
  EXPECT_FALSE(c->tied_embeddings);
  EXPECT_EQ(c->num_parameters, 292800);  // gguf-py: sum of tensor element counts
}

TEST(ModelConfigTest, SmolLm2) {
  auto file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto c = ModelConfigFromGguf(**file);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "Smollm2 135M 8k Lc100K Mix1 Ep2");
  EXPECT_EQ(c->vocab_size, 49152);
  EXPECT_EQ(c->dim, 576);
  EXPECT_EQ(c->num_layers, 30);
  EXPECT_EQ(c->num_heads, 9);
  EXPECT_EQ(c->num_kv_heads, 3);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->ffn_dim, 1536);
  EXPECT_EQ(c->context_length, 8192);
  EXPECT_FLOAT_EQ(c->rms_eps, 1e-5f);
  EXPECT_EQ(c->rope.rot_dim, 64);
  EXPECT_EQ(c->rope.theta, 100000.0f);
  EXPECT_EQ(c->rope.scaling, RopeScaling::kNone);
  EXPECT_TRUE(c->tied_embeddings);
  EXPECT_EQ(c->num_parameters, 134515008);
}

TEST(ModelConfigTest, UnsupportedArchitecture) {
  auto c = ConfigOf(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) { t.arch = "gpt2"; }));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "unsupported architecture gpt2"));
}

TEST(ModelConfigTest, MissingRequiredKeyIsNamed) {
  for (const char* key : {"llama.embedding_length", "llama.block_count",
                          "llama.attention.head_count", "llama.feed_forward_length",
                          "llama.context_length", "llama.attention.layer_norm_rms_epsilon"}) {
    auto c = ConfigOf(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) { t.skip_key = key; }));
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_TRUE(Contains(c.status().message(), key));
  }
}

TEST(ModelConfigTest, KvHeadsDefaultToHeads) {
  auto c = ConfigOf(testing::MakeTinyLlamaWith(
      [&](testing::TinyLlama& t) { t.skip_key = "llama.attention.head_count_kv"; }));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 4);
  EXPECT_EQ(c->rope.rot_dim, 4);  // rope.dimension_count absent: head_dim
  EXPECT_EQ(c->vocab_size, 32);
  EXPECT_FALSE(c->tied_embeddings);
}

TEST(ModelConfigTest, RejectsInconsistentShapes) {
  auto c = ConfigOf(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) {
    t.heads = 4;
    t.kv_heads = 3;
  }));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "not a multiple of head_count_kv 3"));

  c = ConfigOf(testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) {
    t.dim = 8;
    t.heads = 3;
    t.kv_heads = 1;
  }));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);

  GgufWriter w = testing::MakeTinyLlama({});
  w.AddUint32("llama.rope.dimension_count", 6);  // > head_dim 4
  c = ConfigOf(w);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "rope.dimension_count 6"));

  GgufWriter zero =
      testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) { t.skip_key = "llama.block_count"; });
  zero.AddUint32("llama.block_count", 0);
  c = ConfigOf(zero);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "out of range"));
}

TEST(ModelConfigTest, LinearRopeScaling) {
  GgufWriter w = testing::MakeTinyLlama({});
  w.AddString("llama.rope.scaling.type", "linear");
  w.AddFloat32("llama.rope.scaling.factor", 4.0f);
  w.AddFloat32("llama.rope.freq_base", 500000.0f);
  auto c = ConfigOf(w);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.scaling, RopeScaling::kLinear);
  EXPECT_EQ(c->rope.factor, 4.0f);
  EXPECT_EQ(c->rope.theta, 500000.0f);

  GgufWriter yarn = testing::MakeTinyLlama({});
  yarn.AddString("llama.rope.scaling.type", "yarn");
  c = ConfigOf(yarn);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "unsupported rope scaling type 'yarn'"));
}

// What llama.cpp's converter writes to rope_freqs.weight for Llama 3.x (its own formula,
// restated here independently of the code under test).
std::vector<float> Llama3Divisors(int rot_dim, double theta, double factor, double low, double high,
                                  double original) {
  std::vector<float> out;
  for (int i = 0; i < rot_dim; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / rot_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < original / high) {
      out.push_back(1.0f);
    } else if (wavelen > original / low) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (original / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

// Llama 3.2-like: head_dim 128, theta 500000, factor 32 (not the default 8: read from the tensor).
GgufWriter Llama3Writer(const std::vector<float>& divisors) {
  GgufWriter w = testing::MakeTinyLlamaWith([&](testing::TinyLlama& t) {
    t.dim = 256;
    t.layers = 1;
    t.heads = 2;
    t.kv_heads = 1;
  });
  w.AddFloat32("llama.rope.freq_base", 500000.0f);
  w.AddF32Tensor("rope_freqs.weight", {static_cast<int64_t>(divisors.size())}, divisors);
  return w;
}

TEST(ModelConfigTest, Llama3ScalingFromRopeFreqsTensor) {
  const std::vector<float> divisors = Llama3Divisors(128, 500000, 32, 1, 4, 8192);
  ASSERT_EQ(divisors.front(), 1.0f);  // the test data spans all three bands
  ASSERT_EQ(divisors.back(), 32.0f);
  auto c = ConfigOf(Llama3Writer(divisors));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c->rope.factor, 32.0f);
  EXPECT_EQ(c->rope.low_freq_factor, 1.0f);
  EXPECT_EQ(c->rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c->rope.original_context, 8192);
  // And the kernel's frequencies reproduce the file's divisors.
  RopeConfig plain = c->rope;
  plain.scaling = RopeScaling::kNone;
  const std::vector<float> base = RopeInvFreq(plain), scaled = RopeInvFreq(c->rope);
  for (size_t i = 0; i < divisors.size(); ++i) {
    EXPECT_NEAR(base[i] / scaled[i], divisors[i], 1e-3 * divisors[i]) << i;
  }
}

TEST(ModelConfigTest, Llama3TensorThatBreaksTheRuleIsRejected) {
  std::vector<float> divisors = Llama3Divisors(128, 500000, 32, 1, 4, 8192);
  divisors[30] *= 1.5f;
  auto c = ConfigOf(Llama3Writer(divisors));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), "rope_freqs.weight[30]"));

  auto wrong_size = ConfigOf(Llama3Writer(std::vector<float>(10, 1.0f)));
  EXPECT_EQ(wrong_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(wrong_size.status().message(), "expected [64]"));
}

TEST(ModelConfigTest, Llama3ScalingFromMetadata) {
  GgufWriter w = testing::MakeTinyLlama({});
  w.AddString("llama.rope.scaling.type", "llama3");
  w.AddFloat32("llama.rope.scaling.factor", 16.0f);
  w.AddUint32("llama.rope.scaling.original_context_length", 4096);
  auto c = ConfigOf(w);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c->rope.factor, 16.0f);
  EXPECT_EQ(c->rope.original_context, 4096);
  EXPECT_EQ(c->rope.low_freq_factor, 1.0f);
  EXPECT_EQ(c->rope.high_freq_factor, 4.0f);
}

}  // namespace
}  // namespace troupe
