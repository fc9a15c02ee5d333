// fp16 / bf16 scalar conversions and type traits from kernels/ggml_types.h.
#include "kernels/ggml_types.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace troupe {
namespace {

bool IsHalfNan(Fp16 h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }

TEST(Fp16Test, ConvertsExactValues) {
  struct Case {
    Fp16 bits;
    float value;
  };
  const Case cases[] = {
      {0x0000, 0.0f},
      {0x3c00, 1.0f},
      {0xc000, -2.0f},
      {0x3800, 0.5f},
      {0x3555, 0.333251953125f},
      {0x7bff, 65504.0f},
      {0xfbff, -65504.0f},
      {0x0400, 6.103515625e-05f /* 2^-14, smallest normal */},
      {0x4248, 3.140625f},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Fp16ToFp32(c.bits), c.value) << std::hex << c.bits;
    EXPECT_EQ(Fp32ToFp16(c.value), c.bits) << c.value;
  }
  // Negative zero keeps its sign both ways.
  EXPECT_EQ(Fp32ToFp16(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(Fp16ToFp32(0x8000)));
  EXPECT_EQ(Fp16ToFp32(0x8000), 0.0f);
}

TEST(Fp16Test, ConvertsSubnormals) {
  const float kMinSub = std::ldexp(1.0f, -24);
  EXPECT_EQ(Fp16ToFp32(0x0001), kMinSub);
  EXPECT_EQ(Fp16ToFp32(0x03ff), 1023 * kMinSub);
  EXPECT_EQ(Fp16ToFp32(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(Fp16ToFp32(0x8001), -kMinSub);
  EXPECT_EQ(Fp32ToFp16(kMinSub), 0x0001);
  EXPECT_EQ(Fp32ToFp16(1023 * kMinSub), 0x03ff);
  EXPECT_EQ(Fp32ToFp16(-5 * kMinSub), 0x8005);
  // Below half the smallest subnormal flushes to (signed) zero; just above rounds up to it.
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(Fp32ToFp16(-std::ldexp(1.0f, -30)), 0x8000);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  // Rounding up out of the subnormal range lands on the smallest normal.
  EXPECT_EQ(Fp32ToFp16(1023.75f * kMinSub), 0x0400);
}

TEST(Fp16Test, ConvertsInfinityAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Fp16ToFp32(0x7c00), inf);
  EXPECT_EQ(Fp16ToFp32(0xfc00), -inf);
  EXPECT_EQ(Fp32ToFp16(inf), 0x7c00);
  EXPECT_EQ(Fp32ToFp16(-inf), 0xfc00);
  EXPECT_EQ(Fp32ToFp16(1e10f), 0x7c00);
  // 65520 is the midpoint between 65504 (max, odd mantissa) and 65536 (inf): ties to even = inf.
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7c00);
  EXPECT_EQ(Fp32ToFp16(65519.996f), 0x7bff);
  EXPECT_EQ(Fp32ToFp16(-65520.0f), 0xfc00);
}

TEST(Fp16Test, ConvertsNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7e00)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7c01)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0xfe00)));
  EXPECT_TRUE(IsHalfNan(Fp32ToFp16(nan)));
  EXPECT_TRUE(IsHalfNan(Fp32ToFp16(-nan)));
  // A NaN whose payload sits only in the low mantissa bits must not turn into inf.
  EXPECT_TRUE(IsHalfNan(Fp32ToFp16(Fp32FromBits(0x7f800001u))));
  EXPECT_TRUE(IsHalfNan(Fp32ToFp16(Fp32FromBits(0xffc00001u))));
}

TEST(Fp16Test, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const Fp16 bits = static_cast<Fp16>(h);
    if (IsHalfNan(bits)) continue;
    ASSERT_EQ(Fp32ToFp16(Fp16ToFp32(bits)), bits) << std::hex << h;
  }
}

TEST(Fp16Test, RoundsToNearestEven) {
  // Hand cases around 1.0 (ulp 2^-10).
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie, 1.0 is even
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, up to even
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11) - std::ldexp(1.0f, -20)), 0x3c00);
  // Subnormal ties: 0.5 and 1.5 ulps of 2^-24.
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(Fp32ToFp16(3 * std::ldexp(1.0f, -25)), 0x0002);
  // Every midpoint between adjacent finite positive halves (exact in float) goes to the even
  // neighbour, and a nudge either side goes to the nearer one.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float lo = Fp16ToFp32(static_cast<Fp16>(h));
    const float hi = Fp16ToFp32(static_cast<Fp16>(h + 1));
    const float mid = lo + (hi - lo) / 2;
    const Fp16 even = static_cast<Fp16>((h & 1) ? h + 1 : h);
    ASSERT_EQ(Fp32ToFp16(mid), even) << std::hex << h;
    ASSERT_EQ(Fp32ToFp16(-mid), even | 0x8000) << std::hex << h;
    ASSERT_EQ(Fp32ToFp16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(Fp32ToFp16(std::nextafter(mid, hi)), h + 1) << std::hex << h;
  }
}

TEST(Bf16Test, ConvertsAndRoundsToNearestEven) {
  EXPECT_EQ(Bf16ToFp32(0x3f80), 1.0f);
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Fp32ToBf16(-2.0f), 0xc000);
  EXPECT_EQ(Fp32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie, stays even
  EXPECT_EQ(Fp32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie, up to even
  EXPECT_EQ(Fp32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(Fp32FromBits(0x7f800001u)))));
}

TEST(GgmlTypeTest, TraitsMatchBlockLayouts) {
  ASSERT_TRUE(TraitsOf(3).has_value());
  EXPECT_EQ(TraitsOf(3)->name, "Q4_1");
  EXPECT_EQ(TraitsOf(3)->block_bytes, 20);
  EXPECT_EQ(RowBytes(*TraitsOf(8), 576), 18u * 34u);
  EXPECT_EQ(RowBytes(*TraitsOf(0), 10), 40u);
  // The K-quants: 256-element super-blocks, with llama.cpp's block sizes in bytes.
  ASSERT_TRUE(TraitsOf(12).has_value());
  EXPECT_EQ(TraitsOf(12)->name, "Q4_K");
  EXPECT_EQ(TraitsOf(12)->block_elems, 256);
  EXPECT_EQ(TraitsOf(12)->block_bytes, 144);
  EXPECT_EQ(TraitsOf(10)->block_bytes, 84);   // Q2_K
  EXPECT_EQ(TraitsOf(11)->block_bytes, 110);  // Q3_K
  EXPECT_EQ(TraitsOf(13)->block_bytes, 176);  // Q5_K
  EXPECT_EQ(TraitsOf(14)->block_bytes, 210);  // Q6_K
  EXPECT_EQ(RowBytes(*TraitsOf(12), 768), 3u * 144u);
  EXPECT_FALSE(TraitsOf(9).has_value());   // Q8_1: activations only, never a weight
  EXPECT_FALSE(TraitsOf(16).has_value());  // IQ2_XXS: unsupported
  EXPECT_FALSE(TraitsOf(4).has_value());   // a type number ggml retired
}

}  // namespace
}  // namespace troupe
