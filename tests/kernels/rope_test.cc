// RopeInvFreq (none / linear / llama3 scaling) and ref::Rope (GGUF pair order and neox order).
#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

namespace troupe {
namespace {

std::vector<float> RandomVector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Indices of the two elements of rotation pair i within a head.
int FirstOf(int i, bool neox) { return neox ? i : 2 * i; }
int SecondOf(int i, int rot_dim, bool neox) { return neox ? i + rot_dim / 2 : 2 * i + 1; }

RopeArgs MakeArgs(std::vector<float>& x, const std::vector<int32_t>& pos,
                  const std::vector<float>& inv_freq, int n_heads, int head_dim, int rot_dim,
                  bool neox) {
  return {.x = x.data(),
          .positions = pos.data(),
          .inv_freq = inv_freq.data(),
          .n_tokens = static_cast<int64_t>(pos.size()),
          .n_heads = n_heads,
          .head_dim = head_dim,
          .rot_dim = rot_dim,
          .neox = neox};
}

TEST(RopeInvFreqTest, ComputesUnscaledAndLinearFrequencies) {
  RopeConfig config{.head_dim = 64, .rot_dim = 64, .theta = 10000.0f};
  const std::vector<float> plain = RopeInvFreq(config);
  ASSERT_EQ(plain.size(), 32u);
  EXPECT_FLOAT_EQ(plain[0], 1.0f);
  EXPECT_FLOAT_EQ(plain[16], 0.01f);  // 10000^(-32/64)
  for (int i = 0; i < 32; ++i) {
    EXPECT_FLOAT_EQ(plain[i], static_cast<float>(std::pow(10000.0, -2.0 * i / 64))) << i;
  }
  config.scaling = RopeScaling::kLinear;
  config.factor = 4.0f;
  const std::vector<float> linear = RopeInvFreq(config);
  for (int i = 0; i < 32; ++i) EXPECT_FLOAT_EQ(linear[i], plain[i] / 4.0f) << i;
}

TEST(RopeInvFreqTest, Llama3KeepsHighAndDividesLowFrequencies) {
  // Llama 3.1 8B settings: wavelengths below 8192/4 = 2048 are kept, above 8192/1 divided by 8.
  RopeConfig config{.head_dim = 128, .rot_dim = 128, .theta = 500000.0f};
  const std::vector<float> plain = RopeInvFreq(config);
  config.scaling = RopeScaling::kLlama3;
  config.factor = 8.0f;
  config.low_freq_factor = 1.0f;
  config.high_freq_factor = 4.0f;
  config.original_context = 8192;
  const std::vector<float> scaled = RopeInvFreq(config);
  ASSERT_EQ(scaled.size(), 64u);
  int kept = 0, divided = 0, blended = 0;
  for (int i = 0; i < 64; ++i) {
    const double wavelen = 2 * std::numbers::pi / plain[i];
    if (wavelen < 2048) {
      EXPECT_FLOAT_EQ(scaled[i], plain[i]) << i;
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_FLOAT_EQ(scaled[i], plain[i] / 8.0f) << i;
      ++divided;
    } else {
      // Blend: smooth = (8192 / wavelen - 1) / 3, freq = (1 - smooth) * f / 8 + smooth * f.
      const double smooth = (8192 / wavelen - 1.0) / 3.0;
      EXPECT_GT(smooth, -1e-6);
      EXPECT_LT(smooth, 1 + 1e-6);
      EXPECT_NEAR(scaled[i], (1 - smooth) * plain[i] / 8 + smooth * plain[i], 1e-6 * plain[i]);
      EXPECT_LE(scaled[i], plain[i]);
      EXPECT_GE(scaled[i], plain[i] / 8.0f);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  EXPECT_EQ(scaled[0], 1.0f);  // wavelen 2*pi: highest frequency, untouched
  // Scaled frequencies still decrease with the dim index.
  for (int i = 1; i < 64; ++i) EXPECT_LT(scaled[i], scaled[i - 1]) << i;
}

TEST(RopeTest, PositionZeroIsIdentity) {
  for (bool neox : {false, true}) {
    const RopeConfig config{.head_dim = 16, .rot_dim = 16, .neox = neox};
    const std::vector<float> inv_freq = RopeInvFreq(config);
    std::vector<float> x = RandomVector(3 * 16, 1);
    const std::vector<float> before = x;
    ref::Rope(MakeArgs(x, {0}, inv_freq, 3, 16, 16, neox));
    EXPECT_EQ(x, before) << "neox=" << neox;
  }
}

TEST(RopeTest, MatchesDirectRotationAndKeepsUnrotatedDims) {
  constexpr int kHeads = 2, kHeadDim = 24, kRotDim = 16;
  const std::vector<int32_t> pos = {1, 7, 300, 4095};
  for (bool neox : {false, true}) {
    const RopeConfig config{.head_dim = kHeadDim, .rot_dim = kRotDim, .theta = 10000.0f};
    const std::vector<float> inv_freq = RopeInvFreq(config);
    std::vector<float> x = RandomVector(pos.size() * kHeads * kHeadDim, 2);
    const std::vector<float> before = x;
    ref::Rope(MakeArgs(x, pos, inv_freq, kHeads, kHeadDim, kRotDim, neox));
    for (size_t t = 0; t < pos.size(); ++t) {
      for (int h = 0; h < kHeads; ++h) {
        const size_t base = (t * kHeads + h) * kHeadDim;
        for (int i = 0; i < kRotDim / 2; ++i) {
          const double angle = pos[t] * std::pow(10000.0, -2.0 * i / kRotDim);
          const double x0 = before[base + FirstOf(i, neox)];
          const double x1 = before[base + SecondOf(i, kRotDim, neox)];
          EXPECT_NEAR(x[base + FirstOf(i, neox)], x0 * std::cos(angle) - x1 * std::sin(angle),
                      2e-4);
          EXPECT_NEAR(x[base + SecondOf(i, kRotDim, neox)],
                      x0 * std::sin(angle) + x1 * std::cos(angle), 2e-4);
        }
        for (int d = kRotDim; d < kHeadDim; ++d) EXPECT_EQ(x[base + d], before[base + d]);
      }
    }
  }
}

TEST(RopeTest, PreservesPairNorms) {
  constexpr int kHeads = 3, kDim = 64;
  const std::vector<int32_t> pos = {5, 123, 2000};
  const RopeConfig config{.head_dim = kDim, .rot_dim = kDim, .theta = 10000.0f};
  const std::vector<float> inv_freq = RopeInvFreq(config);
  for (bool neox : {false, true}) {
    std::vector<float> x = RandomVector(pos.size() * kHeads * kDim, 3);
    const std::vector<float> before = x;
    ref::Rope(MakeArgs(x, pos, inv_freq, kHeads, kDim, kDim, neox));
    for (size_t row = 0; row < pos.size() * kHeads; ++row) {
      for (int i = 0; i < kDim / 2; ++i) {
        const size_t a = row * kDim + FirstOf(i, neox), b = row * kDim + SecondOf(i, kDim, neox);
        EXPECT_NEAR(std::hypot(x[a], x[b]), std::hypot(before[a], before[b]), 1e-5);
      }
    }
    EXPECT_NE(x, before);
  }
}

TEST(RopeTest, DotProductDependsOnlyOnRelativePosition) {
  // <rope(q, m), rope(k, n)> is a function of m - n: shifting both positions keeps it.
  constexpr int kDim = 32;
  const std::vector<float> inv_freq = RopeInvFreq({.head_dim = kDim, .rot_dim = kDim});
  const std::vector<float> q = RandomVector(kDim, 4), k = RandomVector(kDim, 5);
  auto rotated_dot = [&](int32_t m, int32_t n) {
    std::vector<float> qr = q, kr = k;
    ref::Rope(MakeArgs(qr, {m}, inv_freq, 1, kDim, kDim, false));
    ref::Rope(MakeArgs(kr, {n}, inv_freq, 1, kDim, kDim, false));
    double dot = 0;
    for (int d = 0; d < kDim; ++d) dot += static_cast<double>(qr[d]) * kr[d];
    return dot;
  };
  EXPECT_NEAR(rotated_dot(10, 3), rotated_dot(107, 100), 1e-4);
  EXPECT_NEAR(rotated_dot(3, 3), rotated_dot(0, 0), 1e-4);
  EXPECT_GT(std::abs(rotated_dot(10, 3) - rotated_dot(10, 4)), 1e-3);
}

}  // namespace
}  // namespace troupe
