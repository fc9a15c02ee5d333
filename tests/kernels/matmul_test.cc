// ref::Matmul and DequantizeRow on hand-made blocks of every type against hand-computed values.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace troupe {
namespace {

constexpr Fp16 kHalfOne = 0x3c00;       // 1.0
constexpr Fp16 kHalfHalf = 0x3800;      // 0.5
constexpr Fp16 kHalfTwo = 0x4000;       // 2.0
constexpr Fp16 kHalfMinusOne = 0xbc00;  // -1.0

TEST(DequantizeRowTest, F32CopiesValues) {
  const std::vector<float> src = {1.5f, -2.0f, 0.25f};
  std::vector<float> out(3);
  DequantizeRow(GgmlType::kF32, src.data(), out.data(), 3);
  EXPECT_EQ(out, src);
}

TEST(DequantizeRowTest, F16AndBf16DecodeKnownBits) {
  const std::vector<Fp16> half = {kHalfOne, 0xc000 /* -2 */, kHalfHalf, 0x0001 /* 2^-24 */};
  std::vector<float> out(4);
  DequantizeRow(GgmlType::kF16, half.data(), out.data(), 4);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f, 0.5f, 5.9604644775390625e-8f}));
  const std::vector<Bf16> bf = {0x3f80 /* 1 */, 0xc000 /* -2 */, 0x3f00 /* 0.5 */,
                                0x4049 /* 3.140625 */};
  DequantizeRow(GgmlType::kBF16, bf.data(), out.data(), 4);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.140625f}));
}

TEST(DequantizeRowTest, Q8_0ScalesSignedValues) {
  BlockQ8_0 b[2];
  b[0].d = kHalfHalf;
  b[1].d = kHalfTwo;
  for (int i = 0; i < kQK; ++i) {
    b[0].qs[i] = static_cast<int8_t>(i - 16);
    b[1].qs[i] = static_cast<int8_t>(i == 0 ? -128 : 127);
  }
  std::vector<float> out(2 * kQK);
  DequantizeRow(GgmlType::kQ8_0, b, out.data(), 2 * kQK);
  for (int i = 0; i < kQK; ++i) EXPECT_EQ(out[i], 0.5f * (i - 16)) << i;
  EXPECT_EQ(out[kQK], -256.0f);
  EXPECT_EQ(out[kQK + 1], 254.0f);
}

// Byte i holds low nibble i (element i) and high nibble 15 - i (element 16 + i).
void FillNibbles(uint8_t* qs) {
  for (int i = 0; i < kQK / 2; ++i) qs[i] = static_cast<uint8_t>(i | (15 - i) << 4);
}

TEST(DequantizeRowTest, Q4_0UsesLowThenHighNibblesMinusEight) {
  BlockQ4_0 b;
  b.d = kHalfTwo;
  FillNibbles(b.qs);
  std::vector<float> out(kQK);
  DequantizeRow(GgmlType::kQ4_0, &b, out.data(), kQK);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[i], 2.0f * (i - 8)) << i;
    EXPECT_EQ(out[16 + i], 2.0f * (15 - i - 8)) << i;
  }
}

TEST(DequantizeRowTest, Q4_1AddsMinimum) {
  BlockQ4_1 b;
  b.d = kHalfHalf;
  b.m = kHalfMinusOne;
  FillNibbles(b.qs);
  std::vector<float> out(kQK);
  DequantizeRow(GgmlType::kQ4_1, &b, out.data(), kQK);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[i], 0.5f * i - 1.0f) << i;
    EXPECT_EQ(out[16 + i], 0.5f * (15 - i) - 1.0f) << i;
  }
}

TEST(RefMatmulTest, F32TwoByThreeTimesTwoTokens) {
  // W = [[1, 2, 3], [-1, 0, 0.5]]; x0 = [1, 1, 1], x1 = [2, -1, 4].
  const std::vector<float> w = {1, 2, 3, -1, 0, 0.5f};
  const std::vector<float> x = {1, 1, 1, 2, -1, 4};
  std::vector<float> y(4, -7.0f);
  ref::Matmul({.w = {GgmlType::kF32, w.data(), 2, 3}, .x = x.data(), .y = y.data(), .n_tokens = 2});
  EXPECT_EQ(y, (std::vector<float>{6, -0.5f, 12, 0}));  // y[t, r]
}

TEST(RefMatmulTest, F16AndBf16Rows) {
  // W = [[1, -2], [0.5, 1]] in both encodings; x = [3, 1].
  const std::vector<Fp16> wh = {kHalfOne, 0xc000, kHalfHalf, kHalfOne};
  const std::vector<Bf16> wb = {0x3f80, 0xc000, 0x3f00, 0x3f80};
  const std::vector<float> x = {3, 1};
  std::vector<float> y(2);
  ref::Matmul(
      {.w = {GgmlType::kF16, wh.data(), 2, 2}, .x = x.data(), .y = y.data(), .n_tokens = 1});
  EXPECT_EQ(y, (std::vector<float>{1, 2.5f}));
  ref::Matmul(
      {.w = {GgmlType::kBF16, wb.data(), 2, 2}, .x = x.data(), .y = y.data(), .n_tokens = 1});
  EXPECT_EQ(y, (std::vector<float>{1, 2.5f}));
}

TEST(RefMatmulTest, QuantizedRowsAgainstClosedForms) {
  // One row per type, x = all ones for token 0 and x[i] = i for token 1.
  BlockQ8_0 q8;
  q8.d = kHalfHalf;
  for (int i = 0; i < kQK; ++i) q8.qs[i] = static_cast<int8_t>(i - 16);
  BlockQ4_0 q40;
  q40.d = kHalfTwo;
  FillNibbles(q40.qs);
  BlockQ4_1 q41;
  q41.d = kHalfHalf;
  q41.m = kHalfMinusOne;
  FillNibbles(q41.qs);
  std::vector<float> x(2 * kQK);
  for (int i = 0; i < kQK; ++i) {
    x[i] = 1.0f;
    x[kQK + i] = static_cast<float>(i);
  }
  std::vector<float> y(2);
  // Q8_0: sum 0.5 (i - 16) = -8; sum 0.5 (i - 16) i = 0.5 (10416 - 16 * 496) = 1240.
  ref::Matmul({.w = {GgmlType::kQ8_0, &q8, 1, kQK}, .x = x.data(), .y = y.data(), .n_tokens = 2});
  EXPECT_EQ(y, (std::vector<float>{-8, 1240}));
  // Q4_0: element i < 16 is 2 (i - 8), element 16 + i is 2 (7 - i).
  // Ones: 2 (120 - 128) + 2 (112 - 120) = -32.
  // Index-weighted: sum_i 2 (i - 8) i = 2 (1240 - 960) = 560 and
  // sum_i 2 (7 - i)(16 + i) = 2 sum (112 - 9i - i^2) = 2 (1792 - 1080 - 1240) = -1056.
  ref::Matmul({.w = {GgmlType::kQ4_0, &q40, 1, kQK}, .x = x.data(), .y = y.data(), .n_tokens = 2});
  EXPECT_EQ(y, (std::vector<float>{-32, 560 - 1056}));
  // Q4_1: element i < 16 is 0.5 i - 1, element 16 + i is 0.5 (15 - i) - 1.
  // Ones: 0.5 * 120 + 0.5 * 120 - 32 = 88. Index-weighted: sum_i 0.5 i^2 = 620,
  // sum_i 0.5 (15 - i)(16 + i) = 0.5 (3840 - 120 - 1240) = 1240, minus sum_{e<32} e = 496.
  ref::Matmul({.w = {GgmlType::kQ4_1, &q41, 1, kQK}, .x = x.data(), .y = y.data(), .n_tokens = 2});
  EXPECT_EQ(y, (std::vector<float>{88, 620 + 1240 - 496}));
}

TEST(RefMatmulTest, ZeroTokensWritesNothing) {
  const std::vector<float> w = {1, 2};
  float y = 42.0f;
  ref::Matmul({.w = {GgmlType::kF32, w.data(), 1, 2}, .x = nullptr, .y = &y, .n_tokens = 0});
  EXPECT_EQ(y, 42.0f);
}

}  // namespace
}  // namespace troupe
