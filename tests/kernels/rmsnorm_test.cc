// ref::RmsNorm: a hand-computed row, in-place use, and a long row against a double computation.
#include "kernels/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace troupe {
namespace {

TEST(RmsNormTest, NormalizesKnownVector) {
  // mean(x^2) = (1 + 4 + 9 + 16) / 4 = 7.5; eps = 0.5 makes the divisor sqrt(8) = 2*sqrt(2).
  const std::vector<float> x = {1, 2, 3, 4};
  const std::vector<float> w = {1, 0.5f, 2, -1};
  std::vector<float> out(4);
  ref::RmsNorm(
      {.x = x.data(), .weight = w.data(), .out = out.data(), .n_rows = 1, .dim = 4, .eps = 0.5f});
  const float r = 1.0f / std::sqrt(8.0f);
  EXPECT_FLOAT_EQ(out[0], 1 * r);
  EXPECT_FLOAT_EQ(out[1], 2 * r * 0.5f);
  EXPECT_FLOAT_EQ(out[2], 3 * r * 2);
  EXPECT_FLOAT_EQ(out[3], -4 * r);
}

TEST(RmsNormTest, NormalizesRowsIndependentlyInPlace) {
  // Row 0 = 2 * row 1, so with eps = 0 and unit weights both normalize to the same output,
  // whose mean square is 1.
  std::vector<float> x = {2, -4, 6, 8, 1, -2, 3, 4};
  const std::vector<float> w(4, 1.0f);
  ref::RmsNorm(
      {.x = x.data(), .weight = w.data(), .out = x.data(), .n_rows = 2, .dim = 4, .eps = 0.0f});
  double mean_sq = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(x[i], x[4 + i]);
    mean_sq += x[i] * x[i] / 4.0;
  }
  EXPECT_NEAR(mean_sq, 1.0, 1e-6);
  EXPECT_FLOAT_EQ(x[0], 1.0f / std::sqrt(7.5f));
}

TEST(RmsNormTest, MatchesDoubleComputationOnLongRows) {
  // dim = 577 exercises the vectorized body and the scalar tail.
  constexpr int kDim = 577;
  constexpr int kRows = 3;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> x(kRows * kDim), w(kDim), out(kRows * kDim);
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  ref::RmsNorm({.x = x.data(),
                .weight = w.data(),
                .out = out.data(),
                .n_rows = kRows,
                .dim = kDim,
                .eps = 1e-5f});
  for (int r = 0; r < kRows; ++r) {
    double ss = 0;
    for (int i = 0; i < kDim; ++i) ss += static_cast<double>(x[r * kDim + i]) * x[r * kDim + i];
    const double scale = 1.0 / std::sqrt(ss / kDim + 1e-5);
    for (int i = 0; i < kDim; ++i) {
      const double want = x[r * kDim + i] * scale * w[i];
      ASSERT_NEAR(out[r * kDim + i], want, 1e-5 + 1e-6 * std::abs(want)) << r << "," << i;
    }
  }
}

}  // namespace
}  // namespace troupe

namespace troupe {
namespace {

TEST(AddRmsNormTest, AddsTheBranchThenNormalisesEachRow) {
  std::vector<float> x = {1, 2, 3, 4, -1, 0, 1, 2};
  const std::vector<float> delta = {1, 0, -1, 0, 1, 1, 1, 1};
  const std::vector<float> weight = {1, 2, 1, 0.5f};
  std::vector<float> out(8), want(8);
  const std::vector<float> summed = {2, 2, 2, 4, 0, 1, 2, 3};
  ref::RmsNorm({.x = summed.data(), .weight = weight.data(), .out = want.data(), .n_rows = 2,
                .dim = 4, .eps = 1e-6f});
  ref::AddRmsNorm({.x = x.data(), .delta = delta.data(), .weight = weight.data(),
                   .out = out.data(), .n_rows = 2, .dim = 4, .eps = 1e-6f});
  EXPECT_EQ(x, summed);
  EXPECT_EQ(out, want);
  // Without a branch it is a plain RMSNorm; out may alias the (consumed) delta buffer.
  std::vector<float> buf = delta;
  ref::AddRmsNorm({.x = x.data(), .delta = buf.data(), .weight = weight.data(), .out = buf.data(),
                   .n_rows = 2, .dim = 4, .eps = 1e-6f});
  ref::AddRmsNorm({.x = x.data(), .delta = nullptr, .weight = weight.data(), .out = out.data(),
                   .n_rows = 2, .dim = 4, .eps = 1e-6f});
  EXPECT_EQ(buf, out);
}

}  // namespace
}  // namespace troupe
