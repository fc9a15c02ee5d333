#include "engine/embedding/bert_ops.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/simd.h"

namespace troupe::bert {
namespace {

TEST(BertOpsTest, VectorFormsMatchScalarForms) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.037f) x.push_back(v);
  std::vector<float> e = x, g = x;
  ExpInPlace(e.data(), static_cast<int64_t>(e.size()));
  GeluInPlace(g.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    // Equal up to FMA contraction, which a compiler may apply to one form only.
    EXPECT_NEAR(e[i], cpu::FastExp(x[i]), 1e-6f * cpu::FastExp(x[i])) << x[i];
    EXPECT_NEAR(g[i], Gelu(x[i]), 1e-6f * (1.0f + std::fabs(x[i]))) << x[i];
  }
}

TEST(BertOpsTest, GeluMatchesErfForm) {
  for (float x = -10.0f; x <= 10.0f; x += 0.0071f) {
    const double xd = x;
    const double want = 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0)));
    EXPECT_NEAR(Gelu(x), want, 2e-7 * std::max(1.0, std::fabs(xd))) << x;
  }
}

TEST(BertOpsTest, LayerNormNormalizesRows) {
  std::vector<float> x = {1, 2, 3, 4, 10, 10, 10, 10};
  const std::vector<float> gamma = {1, 1, 2, 2};
  const std::vector<float> beta = {0, 0, 0, 1};
  LayerNorm({.x = x.data(),
             .gamma = gamma.data(),
             .beta = beta.data(),
             .rows = 2,
             .dim = 4,
             .eps = 1e-12f});
  // Row 0: mean 2.5, biased variance 1.25.
  const float s = 1.0f / std::sqrt(1.25f);
  EXPECT_NEAR(x[0], -1.5f * s, 1e-6);
  EXPECT_NEAR(x[1], -0.5f * s, 1e-6);
  EXPECT_NEAR(x[2], 2 * 0.5f * s, 1e-6);
  EXPECT_NEAR(x[3], 2 * 1.5f * s + 1, 1e-6);
  // Row 1 is constant: zero variance gives beta.
  EXPECT_NEAR(x[4], 0.0f, 1e-6);
  EXPECT_NEAR(x[7], 1.0f, 1e-6);
}

// Plain double-precision attention, the oracle.
std::vector<double> RefAttention(const std::vector<float>& qkv, int n, int heads, int hd) {
  const int hidden = heads * hd;
  std::vector<double> out(static_cast<size_t>(n * hidden));
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < n; ++i) {
      std::vector<double> p(n);
      double max_s = -1e300;
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int d = 0; d < hd; ++d) {
          s += static_cast<double>(qkv[i * 3 * hidden + h * hd + d]) *
               qkv[j * 3 * hidden + hidden + h * hd + d];
        }
        p[j] = s / std::sqrt(static_cast<double>(hd));
        max_s = std::max(max_s, p[j]);
      }
      double sum = 0;
      for (double& v : p) sum += (v = std::exp(v - max_s));
      for (int d = 0; d < hd; ++d) {
        double acc = 0;
        for (int j = 0; j < n; ++j) acc += p[j] * qkv[j * 3 * hidden + 2 * hidden + h * hd + d];
        out[i * hidden + h * hd + d] = acc / sum;
      }
    }
  }
  return out;
}

TEST(BertOpsTest, SelfAttentionMatchesReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  for (const int n : {1, 2, 5, 17, 40}) {
    constexpr int kHeads = 3;
    constexpr int kHeadDim = 8;
    std::vector<float> qkv(static_cast<size_t>(n * 3 * kHeads * kHeadDim));
    for (float& v : qkv) v = normal(rng);
    std::vector<float> out(static_cast<size_t>(n * kHeads * kHeadDim));
    SelfAttention({.qkv = qkv.data(),
                   .out = out.data(),
                   .n_tokens = n,
                   .num_heads = kHeads,
                   .head_dim = kHeadDim});
    const std::vector<double> want = RefAttention(qkv, n, kHeads, kHeadDim);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], want[i], 2e-5 * (1.0 + std::fabs(want[i]))) << "n=" << n << " i=" << i;
    }
  }
}

}  // namespace
}  // namespace troupe::bert
