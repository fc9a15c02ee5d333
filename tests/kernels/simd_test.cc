#include "kernels/cpu/simd.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace troupe::cpu {
namespace {

TEST(SimdTest, FastExpIsAccurateOverItsRange) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01173f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(FastExp(x) - want) / want);
  }
  EXPECT_LE(worst, 3e-7);
  EXPECT_EQ(FastExp(0.0f), 1.0f);
}

TEST(SimdTest, FastExpClampsOutsideItsRange) {
  EXPECT_EQ(FastExp(1000.0f), FastExp(88.0f));
  EXPECT_TRUE(std::isfinite(FastExp(1000.0f)));
  EXPECT_EQ(FastExp(-1000.0f), FastExp(-87.0f));
  EXPECT_GE(FastExp(-1000.0f), std::numeric_limits<float>::min());  // normal, not 0 or denormal
}

TEST(SimdTest, FastExpNonPositiveIsAccurateOverItsRange) {
  double worst = 0.0;
  for (float x = -86.99f; x <= 0.0f; x += 0.00731f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(FastExpNonPositive(x) - want) / want);
  }
  EXPECT_LE(worst, 2.2e-7);
  EXPECT_EQ(FastExpNonPositive(0.0f), 1.0f);
  EXPECT_EQ(FastExpNonPositive(-0.0f), 1.0f);
}

TEST(SimdTest, FastExpNonPositiveIsZeroOutsideItsRange) {
  EXPECT_EQ(FastExpNonPositive(-87.0f), 0.0f);
  EXPECT_EQ(FastExpNonPositive(-1000.0f), 0.0f);
  EXPECT_EQ(FastExpNonPositive(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(FastExpNonPositive(std::numeric_limits<float>::quiet_NaN()), 0.0f);
  EXPECT_EQ(FastExpNonPositive(1.0f), 0.0f);  // outside the contract: documented as 0
}

TEST(SimdTest, LaneSumIsExactOnSmallIntegers) {
  // Lengths around the 16-lane boundary, so both the lanes and the tail carry values.
  for (int64_t n : {0, 1, 15, 16, 17, 37, 100}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i + 1);
    const double want = static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
    EXPECT_EQ(LaneSum<float>(x.data(), n), static_cast<float>(want)) << n;
    EXPECT_EQ(LaneSum<double>(x.data(), n), want) << n;
  }
}

TEST(SimdTest, LaneSumAddsInItsDocumentedOrderAndType) {
  // x[0] = 2^24 sits in lane 0; lanes 1..15 and the tail (x[16]) hold 1 each. A float sum adds
  // the tail, then lane 0 (2^24 + 1 rounds to 2^24), then each 1 is lost again; summing the
  // ones first would give 2^24 + 16 exactly. A double accumulator keeps every one.
  std::vector<float> x(17, 1.0f);
  x[0] = 16777216.0f;
  EXPECT_EQ(LaneSum<float>(x.data(), 17), 16777216.0f);
  EXPECT_EQ(LaneSum<double>(x.data(), 17), 16777216.0 + 16.0);
}

TEST(SimdTest, Load16AndStore16RoundTripUnaligned) {
  std::vector<float> src(40), dst(40, -1.0f);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f;
  const Vec16 v = Load16(src.data() + 3);
  for (int l = 0; l < kVec16Lanes; ++l) EXPECT_EQ(v[l], src[3 + l]);
  Store16(dst.data() + 5, v * 2.0f);
  for (size_t i = 0; i < dst.size(); ++i) {
    const float want = i >= 5 && i < 21 ? src[i - 2] * 2.0f : -1.0f;
    EXPECT_EQ(dst[i], want) << i;
  }
}

}  // namespace
}  // namespace troupe::cpu
