// cuda::AddRmsNorm against ref::AddRmsNorm: the residual stream is updated exactly (the same f32
// add), the normalised rows are within bf16 rounding of the reference, and a `rows` gather
// touches only the rows it names.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/norm.h"
#include "kernels/ggml_types.h"
#include "kernels/rmsnorm.h"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

struct NormCase {
  int dim = 0;
  bool with_delta = false;
  std::vector<int32_t> gather;  // empty = no gather (rows 0..n_x_rows-1)
};

void RunNormCase(const NormCase& c, uint32_t seed) {
  SCOPED_TRACE("dim=" + std::to_string(c.dim) + " delta=" + std::to_string(c.with_delta) +
               " gather=" + std::to_string(c.gather.size()));
  constexpr int kXRows = 7;
  const int dim = c.dim;
  const int n_rows = c.gather.empty() ? kXRows : static_cast<int>(c.gather.size());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(kXRows * dim), delta(kXRows * dim), weight(dim);
  for (float& v : x) v = normal(rng);
  for (float& v : delta) v = normal(rng);
  for (float& v : weight) v = 1.0f + 0.25f * normal(rng);

  // Reference: the gathered rows, contiguous, through ref::AddRmsNorm.
  std::vector<int32_t> rows = c.gather;
  if (rows.empty()) {
    for (int r = 0; r < kXRows; ++r) rows.push_back(r);
  }
  std::vector<float> x_sel(n_rows * dim), delta_sel(n_rows * dim), want(n_rows * dim);
  for (int i = 0; i < n_rows; ++i) {
    std::copy_n(x.begin() + rows[i] * dim, dim, x_sel.begin() + i * dim);
    std::copy_n(delta.begin() + rows[i] * dim, dim, delta_sel.begin() + i * dim);
  }
  ref::AddRmsNorm({.x = x_sel.data(),
                   .delta = c.with_delta ? delta_sel.data() : nullptr,
                   .weight = weight.data(),
                   .out = want.data(),
                   .n_rows = n_rows,
                   .dim = dim,
                   .eps = 1e-5f});
  std::vector<float> want_x = x;  // rows outside the gather stay as they were
  for (int i = 0; i < n_rows; ++i) {
    std::copy_n(x_sel.begin() + i * dim, dim, want_x.begin() + rows[i] * dim);
  }

  DeviceBuffer<float> d_x(x), d_delta(delta), d_weight(weight);
  DeviceBuffer<int32_t> d_rows(c.gather);
  DeviceBuffer<Bf16> d_out(n_rows * dim);
  DeviceBuffer<float> d_out_f32(n_rows * dim);
  testing::PoisonNaN(d_out);
  testing::PoisonNaN(d_out_f32);
  cuda::AddRmsNorm({.x = d_x.get(),
                    .delta = c.with_delta ? d_delta.get() : nullptr,
                    .weight = d_weight.get(),
                    .out = d_out.get(),
                    .out_f32 = d_out_f32.get(),
                    .rows = c.gather.empty() ? nullptr : d_rows.get(),
                    .n_rows = n_rows,
                    .dim = dim,
                    .eps = 1e-5f},
                   nullptr);
  const std::vector<float> got_x = d_x.Download();
  const std::vector<float> got = testing::ToFloat(d_out.Download());
  const std::vector<float> got_f32 = d_out_f32.Download();

  // x += delta is the same single f32 add on both sides: bit-exact.
  EXPECT_TRUE(testing::AllClose(got_x, want_x, 0.0, 0.0));
  // The scale is a float sum on the GPU and a double sum in the reference: f32 rounding apart.
  EXPECT_TRUE(testing::AllClose(got_f32, want, 1e-6, 2e-5));
  // One bf16 rounding of (nearly) the same value.
  EXPECT_TRUE(testing::WithinBf16Ulps(got, want, 1.0f, 1e-6));
}

TEST(AddRmsNormCudaTest, MatchesReferenceOverDimsDeltaAndGather) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 1;
  for (int dim : {576, 4096, 8}) {
    for (bool with_delta : {false, true}) {
      RunNormCase({.dim = dim, .with_delta = with_delta, .gather = {}}, seed++);
      // A gather out of order that skips rows 1, 2, 4 and 6.
      RunNormCase({.dim = dim, .with_delta = with_delta, .gather = {5, 0, 3}}, seed++);
    }
  }
}

TEST(AddRmsNormCudaTest, SingleGatheredRowLeavesOtherRowsUntouched) {
  TROUPE_SKIP_WITHOUT_CUDA();
  // The decode-time use: only the last token's row of a prompt is normalised.
  RunNormCase({.dim = 4096, .with_delta = true, .gather = {6}}, 99);
}

}  // namespace
}  // namespace troupe
