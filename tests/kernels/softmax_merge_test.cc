// Tests of the online softmax and log-sum-exp merge shared with the CUDA kernels
// (kernels/softmax_merge.h): attention computed in chunks and merged equals attention in one go.
#include "kernels/softmax_merge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace troupe {
namespace {

struct Partial {
  std::vector<float> o;  // normalised within the chunk
  float lse = -INFINITY;
};

// Attention of one query over keys [begin, end) as a kernel does it: tiles of `tile` scores,
// each folded into the running state with SoftmaxRescale.
Partial AttendChunk(const std::vector<float>& scores, const std::vector<float>& v, int dim,
                    int begin, int end, int tile) {
  SoftmaxState state;
  std::vector<float> acc(dim, 0.0f);
  for (int t = begin; t < end; t += tile) {
    const int t_end = std::min(end, t + tile);
    float tile_max = -INFINITY;
    for (int j = t; j < t_end; ++j) tile_max = std::max(tile_max, scores[j]);
    const float alpha = SoftmaxRescale(state, tile_max);
    for (float& a : acc) a *= alpha;
    for (int j = t; j < t_end; ++j) {
      const float p = std::exp(scores[j] - state.m);
      state.l += p;
      for (int d = 0; d < dim; ++d) acc[d] += p * v[j * dim + d];
    }
  }
  Partial out;
  out.lse = SoftmaxLse(state);
  out.o.assign(dim, 0.0f);
  if (state.l > 0) {
    for (int d = 0; d < dim; ++d) out.o[d] = acc[d] / state.l;
  }
  return out;
}

TEST(SoftmaxMergeTest, ChunkedAndMergedEqualsDirect) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int n = 1000, dim = 8;
  std::vector<float> scores(n), v(n * dim);
  for (float& s : scores) s = normal(rng);
  for (float& x : v) x = normal(rng);
  // Direct, in double.
  double max_s = -INFINITY, sum = 0;
  for (float s : scores) max_s = std::max<double>(max_s, s);
  std::vector<double> want(dim, 0.0);
  for (int j = 0; j < n; ++j) {
    const double p = std::exp(scores[j] - max_s);
    sum += p;
    for (int d = 0; d < dim; ++d) want[d] += p * v[j * dim + d];
  }
  const double want_lse = max_s + std::log(sum);
  for (int splits : {1, 3, 8, 40}) {
    std::vector<Partial> parts;
    const int chunk = (n + splits - 1) / splits;
    for (int s = 0; s < splits; ++s) {
      parts.push_back(AttendChunk(scores, v, dim, std::min(n, s * chunk),
                                  std::min(n, (s + 1) * chunk), 16));
    }
    float lse = -INFINITY;
    for (const Partial& p : parts) lse = LseAdd(lse, p.lse);
    EXPECT_NEAR(lse, want_lse, 1e-4) << splits;
    for (int d = 0; d < dim; ++d) {
      float o = 0;
      for (const Partial& p : parts) o += LseMergeWeight(p.lse, lse) * p.o[d];
      EXPECT_NEAR(o, want[d] / sum, 1e-5) << splits << " dim " << d;
    }
  }
}

TEST(SoftmaxMergeTest, EmptyPartialsHaveNoWeight) {
  EXPECT_EQ(LseAdd(-INFINITY, -INFINITY), -INFINITY);
  EXPECT_EQ(LseAdd(-INFINITY, 2.5f), 2.5f);
  EXPECT_EQ(LseAdd(1.0f, -INFINITY), 1.0f);
  EXPECT_NEAR(LseAdd(0.0f, 0.0f), std::log(2.0f), 1e-7);
  EXPECT_EQ(LseMergeWeight(-INFINITY, 3.0f), 0.0f);
  EXPECT_EQ(SoftmaxLse(SoftmaxState{}), -INFINITY);
  // Large scores do not overflow.
  EXPECT_NEAR(LseAdd(1000.0f, 1000.0f), 1000.0f + std::log(2.0f), 1e-3);
}

TEST(SoftmaxMergeTest, RescaleFromEmptyStateIgnoresTheOldSum) {
  SoftmaxState s;
  EXPECT_EQ(SoftmaxRescale(s, 5.0f), 0.0f);
  EXPECT_EQ(s.m, 5.0f);
  s.l = 1.0f;
  EXPECT_NEAR(SoftmaxRescale(s, 6.0f), std::exp(-1.0f), 1e-7);
  EXPECT_NEAR(s.l, std::exp(-1.0f), 1e-7);
  // A lower tile max keeps the running max.
  EXPECT_EQ(SoftmaxRescale(s, 2.0f), 1.0f);
  EXPECT_EQ(s.m, 6.0f);
}

}  // namespace
}  // namespace troupe
