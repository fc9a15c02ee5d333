// ref::SiluMul: known values, saturation without NaN, aliasing, and a long vector.
#include "kernels/silu_mul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace troupe {
namespace {

TEST(SiluMulTest, ComputesKnownValues) {
  const std::vector<float> gate = {0.0f, 1.0f, -1.0f, 2.0f, 5.0f};
  const std::vector<float> up = {3.0f, 2.0f, 1.0f, -1.0f, 0.5f};
  std::vector<float> out(5);
  ref::SiluMul({.gate = gate.data(), .up = up.data(), .out = out.data(), .n = 5});
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 0.7310585786f * 2.0f);  // 1 / (1 + e^-1)
  EXPECT_FLOAT_EQ(out[2], -0.2689414214f);        // -1 / (1 + e)
  EXPECT_FLOAT_EQ(out[3], -1.7615941560f);        // 2 / (1 + e^-2), times -1
  EXPECT_FLOAT_EQ(out[4], 4.9665357420f * 0.5f);  // 5 / (1 + e^-5)
}

TEST(SiluMulTest, SaturatesWithoutNan) {
  const std::vector<float> gate = {-100.0f, -1000.0f, 100.0f, 1e30f};
  const std::vector<float> up = {1.0f, 1.0f, 1.0f, 1.0f};
  std::vector<float> out(4);
  ref::SiluMul({.gate = gate.data(), .up = up.data(), .out = out.data(), .n = 4});
  EXPECT_NEAR(out[0], 0.0f, 1e-30f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_FLOAT_EQ(out[2], 100.0f);
  EXPECT_FLOAT_EQ(out[3], 1e30f);
  for (float v : out) EXPECT_FALSE(std::isnan(v));
}

TEST(SiluMulTest, WorksInPlaceOnLongVectors) {
  constexpr int kN = 1000;  // not a multiple of any vector width
  std::vector<float> gate(kN), up(kN);
  for (int i = 0; i < kN; ++i) {
    gate[i] = (i - 500) * 0.013f;
    up[i] = 1.0f + (i % 7) * 0.25f;
  }
  const std::vector<float> gate_copy = gate;
  ref::SiluMul({.gate = gate.data(), .up = up.data(), .out = gate.data(), .n = kN});
  for (int i = 0; i < kN; ++i) {
    const double g = gate_copy[i];
    const double want = g / (1.0 + std::exp(-g)) * up[i];
    ASSERT_NEAR(gate[i], want, 1e-6 + 1e-6 * std::abs(want)) << i;
  }
}

}  // namespace
}  // namespace troupe
