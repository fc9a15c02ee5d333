// cuda::Gemm (cuBLAS, bf16 in, f32 accumulate and out) against ref::Matmul on the same
// bf16-rounded inputs: decode (n = 1, 7) and prefill (n = 64) shapes of SmolLM2 and Llama.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/gemm.h"
#include "kernels/ggml_types.h"
#include "kernels/matmul.h"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

struct GemmShape {
  int rows;  // output features
  int cols;  // input features
  int n;     // tokens
};

TEST(GemmCudaTest, MatchesReferenceMatmul) {
  TROUPE_SKIP_WITHOUT_CUDA();
  absl::StatusOr<cuda::Gemm> gemm = cuda::Gemm::Create(nullptr);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  const GemmShape shapes[] = {{576, 1536, 1},  {576, 1536, 7},  {1536, 576, 64},
                              {64, 64, 1},     {192, 576, 7},   {49152, 576, 7},
                              {4096, 4096, 1}, {6144, 4096, 7}, {4096, 14336, 16}};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const GemmShape& s : shapes) {
    SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) +
                 " n=" + std::to_string(s.n));
    const size_t w_size = static_cast<size_t>(s.rows) * s.cols;
    const size_t x_size = static_cast<size_t>(s.n) * s.cols;
    std::vector<Bf16> w(w_size), x(x_size);
    std::vector<float> w_f(w_size), x_f(x_size);
    for (size_t i = 0; i < w_size; ++i) {
      w[i] = Fp32ToBf16(0.05f * normal(rng));
      w_f[i] = Bf16ToFp32(w[i]);
    }
    for (size_t i = 0; i < x_size; ++i) {
      x[i] = Fp32ToBf16(normal(rng));
      x_f[i] = Bf16ToFp32(x[i]);
    }
    std::vector<float> want(static_cast<size_t>(s.n) * s.rows);
    ref::Matmul({.w = {.type = GgmlType::kF32, .data = w_f.data(), .rows = s.rows, .cols = s.cols},
                 .x = x_f.data(),
                 .y = want.data(),
                 .n_tokens = s.n});

    DeviceBuffer<Bf16> d_w(w), d_x(x);
    DeviceBuffer<float> d_y(static_cast<size_t>(s.n) * s.rows);
    testing::PoisonNaN(d_y);
    gemm->Run(d_w.get(), s.rows, s.cols, d_x.get(), s.n, d_y.get());
    const std::vector<float> got = d_y.Download();
    // Exact products, f32 sums in some order: ~1e-6 in practice; 1e-2 would still catch a
    // layout mistake (those give errors of order 1).
    EXPECT_LE(testing::RelativeL2(got, want), 1e-2);
    EXPECT_TRUE(testing::AllClose(got, want, 1e-3, 1e-2));
  }
}

}  // namespace
}  // namespace troupe
