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

// ---- 5-bit and K-quant blocks (layouts in kernels/ggml_types.h) ----

TEST(DequantizeRowTest, Q5_0AndQ5_1TakeTheFifthBitFromQh) {
  // qh = 0xAAAA0001 (little-endian): bit 0 and the odd bits 17..31 are set.
  const uint8_t qh[4] = {0x01, 0x00, 0xaa, 0xaa};
  BlockQ5_0 b0;
  b0.d = kHalfTwo;
  std::memcpy(b0.qh, qh, 4);
  FillNibbles(b0.qs);  // element i: i, element 16 + i: 15 - i
  std::vector<float> out(kQK);
  DequantizeRow(GgmlType::kQ5_0, &b0, out.data(), kQK);
  EXPECT_EQ(out[0], 2.0f * (16 - 16));  // 0 | 16
  EXPECT_EQ(out[1], 2.0f * (1 - 16));
  EXPECT_EQ(out[15], 2.0f * (15 - 16));
  EXPECT_EQ(out[16], 2.0f * (15 - 16));       // bit 16 clear
  EXPECT_EQ(out[17], 2.0f * (14 + 16 - 16));  // bit 17 set
  EXPECT_EQ(out[31], 2.0f * (0 + 16 - 16));

  BlockQ5_1 b1;
  b1.d = kHalfHalf;
  b1.m = kHalfMinusOne;
  std::memcpy(b1.qh, qh, 4);
  FillNibbles(b1.qs);
  DequantizeRow(GgmlType::kQ5_1, &b1, out.data(), kQK);
  EXPECT_EQ(out[0], 0.5f * 16 - 1.0f);
  EXPECT_EQ(out[2], 0.5f * 2 - 1.0f);
  EXPECT_EQ(out[17], 0.5f * 30 - 1.0f);
  EXPECT_EQ(out[18], 0.5f * 13 - 1.0f);
}

TEST(UnpackScaleMinKTest, DecodesSixBitPairsFromKnownBytes) {
  const uint8_t scales[kKScaleBytes] = {0xc1, 0x42, 0x03, 0x04, 0x80, 0x05,
                                        0x0a, 0x3f, 0x21, 0x43, 0x65, 0x87};
  const int want_sc[8] = {1, 2, 3, 4, 1 | 3 << 4, 3 | 1 << 4, 5, 7};
  const int want_m[8] = {0, 5, 10, 63, 2 | 2 << 4, 4, 6, 8};
  for (int j = 0; j < 8; ++j) {
    int sc = -1, m = -1;
    UnpackScaleMinK(scales, j, &sc, &m);
    EXPECT_EQ(sc, want_sc[j]) << j;
    EXPECT_EQ(m, want_m[j]) << j;
  }
}

// Packs six-bit sc[8], m[8] the way ggml's quantizer does (the inverse of UnpackScaleMinK).
void PackScaleMinK(const int sc[8], const int m[8], uint8_t out[kKScaleBytes]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | (m[j + 4] >> 4) << 6);
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
}

constexpr int kSc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
constexpr int kMin[8] = {0, 5, 10, 63, 16, 31, 48, 7};

TEST(DequantizeRowTest, Q4_KScalesEachSubBlockAndSubtractsItsMinimum) {
  BlockQ4_K b;
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  PackScaleMinK(kSc, kMin, b.scales);
  // Group g's byte l: low nibble l % 16 (sub-block 2g), high nibble 15 - l % 16 (2g + 1).
  for (int i = 0; i < kQKK / 2; ++i) b.qs[i] = static_cast<uint8_t>(i % 16 | (15 - i % 16) << 4);
  std::vector<float> out(kQKK);
  DequantizeRow(GgmlType::kQ4_K, &b, out.data(), kQKK);
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      const int lo = 2 * g, hi = 2 * g + 1;
      EXPECT_EQ(out[64 * g + l], 1.0f * kSc[lo] * (l % 16) - 0.5f * kMin[lo]) << g << " " << l;
      EXPECT_EQ(out[64 * g + 32 + l], 1.0f * kSc[hi] * (15 - l % 16) - 0.5f * kMin[hi])
          << g << " " << l;
    }
  }
}

TEST(DequantizeRowTest, Q5_KAddsBitTwoGPlusKOfQh) {
  BlockQ5_K b;
  b.d = kHalfHalf;
  b.dmin = kHalfOne;
  PackScaleMinK(kSc, kMin, b.scales);
  for (int i = 0; i < kQKK / 2; ++i) b.qs[i] = 0x53;  // low nibble 3, high 5
  // qh[l]: bit 0 (sub-block 0) for even l, bit 7 (sub-block 7) for l = 31.
  for (int l = 0; l < 32; ++l) b.qh[l] = static_cast<uint8_t>((l % 2 == 0 ? 1 : 0) | (l == 31 ? 0x80 : 0));
  std::vector<float> out(kQKK);
  DequantizeRow(GgmlType::kQ5_K, &b, out.data(), kQKK);
  EXPECT_EQ(out[0], 0.5f * kSc[0] * (3 + 16) - kMin[0]);
  EXPECT_EQ(out[1], 0.5f * kSc[0] * 3 - kMin[0]);
  EXPECT_EQ(out[32], 0.5f * kSc[1] * 5 - kMin[1]);
  EXPECT_EQ(out[64], 0.5f * kSc[2] * 3 - kMin[2]);
  EXPECT_EQ(out[224 + 30], 0.5f * kSc[7] * 5 - kMin[7]);
  EXPECT_EQ(out[224 + 31], 0.5f * kSc[7] * (5 + 16) - kMin[7]);
}

TEST(DequantizeRowTest, Q6_KCombinesNibblesWithTwoHighBitsAndSignedScales) {
  BlockQ6_K b;
  b.d = kHalfHalf;
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
  // ql: 0x21 in the first 32 bytes of each half, 0x43 in the second; qh: 0b11100100 in the
  // first half (high bits 0, 1, 2, 3 for the four quarters), 0b00011011 in the second (3..0).
  for (int i = 0; i < kQKK / 2; ++i) b.ql[i] = (i % 64) < 32 ? 0x21 : 0x43;
  for (int i = 0; i < kQKK / 4; ++i) b.qh[i] = i < 32 ? 0xe4 : 0x1b;
  const int q_first[4] = {1 | 0 << 4, 3 | 1 << 4, 2 | 2 << 4, 4 | 3 << 4};
  const int q_second[4] = {1 | 3 << 4, 3 | 2 << 4, 2 | 1 << 4, 4 | 0 << 4};
  std::vector<float> out(kQKK);
  DequantizeRow(GgmlType::kQ6_K, &b, out.data(), kQKK);
  for (int e = 0; e < kQKK; ++e) {
    const int quarter = (e % 128) / 32;
    const int q = e < 128 ? q_first[quarter] : q_second[quarter];
    EXPECT_EQ(out[e], 0.5f * static_cast<float>(e / 16 - 8) * static_cast<float>(q - 32)) << e;
  }
}

TEST(Q3KScaleTest, DecodesSixBitScalesFromKnownBytes) {
  // Low nibbles of bytes 0..7 are scales 0..7, their high nibbles scales 8..15; byte 8 + k holds
  // the top 2 bits of scales k, 4 + k, 8 + k, 12 + k at bits 0, 2, 4, 6.
  const uint8_t scales[kKScaleBytes] = {0x21, 0x43, 0x65, 0x87, 0xa9, 0xcb, 0xed, 0x0f,
                                        0xe4, 0x00, 0xff, 0x1b};
  // e.g. j = 2: low nibble of byte 2 (5), top bits 0-1 of byte 10 (3): 5 | 3 << 4 = 53;
  // j = 15: high nibble of byte 7 (0), bits 6-7 of byte 11 (0). (ggml's aux-word unpacking in
  // dequantize_row_q3_K gives the same 16 values for these bytes.)
  const int want[16] = {1, 3, 53, 55, 25, 11, 61, 47, 34, 4, 54, 24, 58, 12, 62, 0};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(Q3KScale(scales, j), want[j]) << j;
}

TEST(DequantizeRowTest, Q3_KTakesTwoLowBitsAndSubtractsFourUnlessTheHighBitIsSet) {
  BlockQ3_K b;
  b.d = kHalfHalf;
  // Scales 20 + j (values -12..3): low nibble in byte j (j < 8) or the high nibble of byte
  // j - 8, top 2 bits at bits 2 * (j / 4) of byte 8 + j % 4.
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < 16; ++j) {
    const int sc = 20 + j;
    if (j < 8) {
      b.scales[j] |= sc & 0x0f;
    } else {
      b.scales[j - 8] |= (sc & 0x0f) << 4;
    }
    b.scales[8 + j % 4] |= (sc >> 4) << (2 * (j / 4));
  }
  for (int j = 0; j < 16; ++j) ASSERT_EQ(Q3KScale(b.scales, j), 20 + j);
  for (uint8_t& q : b.qs) q = 0xe4;  // bit pairs j = 0..3 hold 0, 1, 2, 3
  for (int l = 0; l < 32; ++l) b.hmask[l] = l % 2 == 0 ? 0xa5 : 0x00;  // bits 0, 2, 5, 7
  // Element 128h + 32j + l: low bits j; high bit 4h + j of hmask[l] (even l only).
  const int q_even[2][4] = {{0, 1 - 4, 2, 3 - 4}, {0 - 4, 1, 2 - 4, 3}};
  std::vector<float> out(kQKK);
  DequantizeRow(GgmlType::kQ3_K, &b, out.data(), kQKK);
  for (int e = 0; e < kQKK; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int q = l % 2 == 0 ? q_even[h][j] : j - 4;
    EXPECT_EQ(out[e], 0.5f * static_cast<float>(20 + e / 16 - 32) * static_cast<float>(q)) << e;
  }
}

TEST(DequantizeRowTest, Q2_KScalesAndSubtractsAMinimumPer16) {
  BlockQ2_K b;
  b.d = kHalfHalf;
  b.dmin = kHalfOne;
  // Sub-block s: scale (s % 16) in the low nibble, minimum (15 - s) in the high one.
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<uint8_t>(s | (15 - s) << 4);
  for (int i = 0; i < kQKK / 4; ++i) b.qs[i] = i % 2 == 0 ? 0xe4 : 0x1b;  // pairs 0,1,2,3 / 3,2,1,0
  std::vector<float> out(kQKK);
  DequantizeRow(GgmlType::kQ2_K, &b, out.data(), kQKK);
  for (int e = 0; e < kQKK; ++e) {
    const int j = (e % 128) / 32, l = e % 32;  // bits 2j of qs[32h + l]
    const int q = l % 2 == 0 ? j : 3 - j;
    const int s = e / 16;
    EXPECT_EQ(out[e], 0.5f * static_cast<float>(s) * static_cast<float>(q) - 1.0f * (15 - s)) << e;
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
