// cuda::SiluMul against ref::SiluMul: f32 math on the fused [gate | up] GEMM rows, one bf16
// rounding on the way out, including a launch larger than its capped grid.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/activation.h"
#include "kernels/ggml_types.h"
#include "kernels/silu_mul.h"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

// gate_up[n_rows, 2 * width] with values v(i) from `fill`; checks out against the reference.
template <typename Fill>
void RunSiluMulCase(int n_rows, int width, Fill fill) {
  SCOPED_TRACE("rows=" + std::to_string(n_rows) + " width=" + std::to_string(width));
  const size_t n = static_cast<size_t>(n_rows) * width;
  std::vector<float> gate_up(2 * n);
  for (size_t i = 0; i < gate_up.size(); ++i) gate_up[i] = fill(i);
  std::vector<float> gate(n), up(n), want(n);
  for (int r = 0; r < n_rows; ++r) {
    const float* row = gate_up.data() + static_cast<size_t>(r) * 2 * width;
    std::copy_n(row, width, gate.begin() + static_cast<size_t>(r) * width);
    std::copy_n(row + width, width, up.begin() + static_cast<size_t>(r) * width);
  }
  ref::SiluMul(
      {.gate = gate.data(), .up = up.data(), .out = want.data(), .n = static_cast<int64_t>(n)});

  DeviceBuffer<float> d_gate_up(gate_up);
  DeviceBuffer<Bf16> d_out(n);
  testing::PoisonNaN(d_out);
  cuda::SiluMul({.gate_up = d_gate_up.get(), .out = d_out.get(), .n_rows = n_rows, .width = width},
                nullptr);
  const std::vector<float> got = testing::ToFloat(d_out.Download());
  // expf on the device, std::exp in the reference: f32 ulps apart before the bf16 rounding.
  EXPECT_TRUE(testing::WithinBf16Ulps(got, want, 1.0f, 1e-6));
}

TEST(SiluMulCudaTest, MatchesReference) {
  TROUPE_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(3);
  // Wide enough to reach silu's saturated ends (gate -20: ~-4e-8; gate 20: ~20).
  std::normal_distribution<float> normal(0.0f, 5.0f);
  auto fill = [&](size_t) { return normal(rng); };
  RunSiluMulCase(1, 4, fill);
  RunSiluMulCase(5, 1536, fill);
  RunSiluMulCase(3, 14336, fill);
  RunSiluMulCase(64, 8192, fill);
}

TEST(SiluMulCudaTest, GridStrideCoversMoreGroupsThanTheGrid) {
  TROUPE_SKIP_WITHOUT_CUDA();
  // 4700 * 14336 / 4 groups > 65536 blocks * 256 threads: threads take a second group.
  auto fill = [](size_t i) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return static_cast<float>(static_cast<int64_t>(x % 20001) - 10000) * 1e-3f;  // [-10, 10]
  };
  RunSiluMulCase(4700, 14336, fill);
}

}  // namespace
}  // namespace troupe
