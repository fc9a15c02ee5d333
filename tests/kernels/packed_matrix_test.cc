// cpu::Matmul (every compiled ISA) against ref::Matmul for every weight type, on synthetic blocks
// and on real tensors of the SmolLM2 GGUF; PackedMatrix size, borrowing and GetRow.
//
// Error bound for quantized weights: the kernels quantize each 32-element block of x to int8
// with d = amax / 127, so |x_k - d q_k| <= d / 2 = amax / 254, and
//   |y - ref| <= sum_b amax_b / 254 * sum_{k in b} |w_k|          (activation rounding)
//              + 1e-5 * (sum_k |w_k x_k| + sum_b |m_b| sum_{k in b} |x_k|)   (f32 arithmetic)
// where m_b is Q4_1's block minimum (its term is accumulated separately). Float weights only
// have the second term. The bound is per output, so a wrong row, token or block fails it.
#include "kernels/cpu/packed_matrix.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul_isa.h"
#include "kernels/cpu/packed_layout.h"
#include "tests/testing/model_paths.h"

namespace troupe::cpu {
namespace {

using internal::Isa;

size_t SourceBytes(GgmlType type, int64_t rows, int64_t cols) {
  return RowBytes(*TraitsOf(static_cast<uint32_t>(type)), cols) * static_cast<size_t>(rows);
}

// Random weights of `type`: scales ~0.01-0.05 with random signs, random quantized values.
std::vector<uint8_t> RandomWeights(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data(SourceBytes(type, rows, cols));
  std::uniform_real_distribution<float> scale(0.01f, 0.05f);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  auto signed_scale = [&] { return Fp32ToFp16(rng() % 2 ? scale(rng) : -scale(rng)); };
  const int64_t n = rows * cols;
  switch (type) {
    case GgmlType::kF32:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<float*>(data.data())[i] = normal(rng);
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i)
        reinterpret_cast<Fp16*>(data.data())[i] = Fp32ToFp16(normal(rng));
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i)
        reinterpret_cast<Bf16*>(data.data())[i] = Fp32ToBf16(normal(rng));
      break;
    case GgmlType::kQ8_0:
      for (int64_t i = 0; i < n / kQK; ++i) {
        auto& b = reinterpret_cast<BlockQ8_0*>(data.data())[i];
        b.d = signed_scale();
        for (int8_t& q : b.qs) q = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
      }
      break;
    case GgmlType::kQ4_0:
      for (int64_t i = 0; i < n / kQK; ++i) {
        auto& b = reinterpret_cast<BlockQ4_0*>(data.data())[i];
        b.d = signed_scale();
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
      }
      break;
    case GgmlType::kQ4_1:
      for (int64_t i = 0; i < n / kQK; ++i) {
        auto& b = reinterpret_cast<BlockQ4_1*>(data.data())[i];
        b.d = signed_scale();
        b.m = Fp32ToFp16(-8.0f * std::fabs(Fp16ToFp32(b.d)) + normal(rng) * 0.1f);
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
      }
      break;
    case GgmlType::kQ5_0:
      for (int64_t i = 0; i < n / kQK; ++i) {
        auto& b = reinterpret_cast<BlockQ5_0*>(data.data())[i];
        b.d = signed_scale();
        for (uint8_t& q : b.qh) q = static_cast<uint8_t>(rng());
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
      }
      break;
    case GgmlType::kQ5_1:
      for (int64_t i = 0; i < n / kQK; ++i) {
        auto& b = reinterpret_cast<BlockQ5_1*>(data.data())[i];
        b.d = signed_scale();
        b.m = Fp32ToFp16(-16.0f * std::fabs(Fp16ToFp32(b.d)) + normal(rng) * 0.1f);
        for (uint8_t& q : b.qh) q = static_cast<uint8_t>(rng());
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
      }
      break;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      // d ~ 0.002 (times six-bit scales up to 63), dmin like it; every byte else random.
      const bool q5 = type == GgmlType::kQ5_K;
      const size_t block_bytes = q5 ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
      for (int64_t i = 0; i < n / kQKK; ++i) {
        uint8_t* blk = data.data() + i * block_bytes;
        for (size_t k = 4; k < block_bytes; ++k) blk[k] = static_cast<uint8_t>(rng());
        const Fp16 d = Fp32ToFp16(scale(rng) / 16), dmin = Fp32ToFp16(scale(rng) / 16);
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &dmin, 2);
      }
      break;
    }
    case GgmlType::kQ2_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        auto& b = reinterpret_cast<BlockQ2_K*>(data.data())[i];
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
        for (uint8_t& sc : b.scales) sc = static_cast<uint8_t>(rng());
        b.d = Fp32ToFp16(scale(rng) / 4);
        b.dmin = Fp32ToFp16(scale(rng) / 4);
      }
      break;
    case GgmlType::kQ3_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        auto& b = reinterpret_cast<BlockQ3_K*>(data.data())[i];
        for (uint8_t& q : b.hmask) q = static_cast<uint8_t>(rng());
        for (uint8_t& q : b.qs) q = static_cast<uint8_t>(rng());
        for (uint8_t& sc : b.scales) sc = static_cast<uint8_t>(rng());
        b.d = Fp32ToFp16(scale(rng) / 8);
      }
      break;
    case GgmlType::kQ6_K:
      for (int64_t i = 0; i < n / kQKK; ++i) {
        auto& b = reinterpret_cast<BlockQ6_K*>(data.data())[i];
        for (uint8_t& q : b.ql) q = static_cast<uint8_t>(rng());
        for (uint8_t& q : b.qh) q = static_cast<uint8_t>(rng());
        for (int8_t& sc : b.scales) sc = static_cast<int8_t>(static_cast<int>(rng() % 128) - 64);
        b.d = Fp32ToFp16(scale(rng) / 64);
      }
      break;
  }
  return data;
}

bool IsQuantized(GgmlType type) { return layout::IsRepacked(type); }

// The additive term of block b (32 elements) of a row of `type` (its magnitude's bound for Q2_K),
// 0 for types without one.
float BlockMinimum(GgmlType type, const uint8_t* row, int64_t b) {
  int sc = 0, m = 0;
  switch (type) {
    case GgmlType::kQ4_1:
      return Fp16ToFp32(reinterpret_cast<const BlockQ4_1*>(row)[b].m);
    case GgmlType::kQ5_1:
      return Fp16ToFp32(reinterpret_cast<const BlockQ5_1*>(row)[b].m);
    case GgmlType::kQ4_K: {
      const BlockQ4_K& k = reinterpret_cast<const BlockQ4_K*>(row)[b / 8];
      UnpackScaleMinK(k.scales, static_cast<int>(b % 8), &sc, &m);
      return -Fp16ToFp32(k.dmin) * static_cast<float>(m);
    }
    case GgmlType::kQ5_K: {
      const BlockQ5_K& k = reinterpret_cast<const BlockQ5_K*>(row)[b / 8];
      UnpackScaleMinK(k.scales, static_cast<int>(b % 8), &sc, &m);
      return -Fp16ToFp32(k.dmin) * static_cast<float>(m);
    }
    case GgmlType::kQ2_K: {  // two per block: the larger, which bounds both
      const BlockQ2_K& k = reinterpret_cast<const BlockQ2_K*>(row)[b / 8];
      const int s = static_cast<int>(b % 8) * 2;
      return Fp16ToFp32(k.dmin) * static_cast<float>(std::max(k.scales[s] >> 4, k.scales[s + 1] >> 4));
    }
    default:
      return 0.0f;
  }
}

// Activations like a normed hidden state: N(0, 1) with a few large outliers.
std::vector<float> RandomActivations(int64_t n_tokens, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n_tokens * cols);
  for (float& v : x) v = rng() % 97 == 0 ? 20.0f * normal(rng) : normal(rng);
  return x;
}

// Checks got[n_tokens, rows] against ref::Matmul under the bound in the file comment.
void ExpectMatchesRef(const MatrixView& w, const std::vector<float>& x, int64_t n_tokens,
                      const std::vector<float>& got, const std::string& what) {
  std::vector<float> want(n_tokens * w.rows);
  ref::Matmul({.w = w, .x = x.data(), .y = want.data(), .n_tokens = n_tokens});
  const bool quantized = IsQuantized(w.type);
  const auto traits = TraitsOf(static_cast<uint32_t>(w.type));
  std::vector<float> row(w.cols);
  int failures = 0;
  double err2 = 0, ref2 = 0;
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src = static_cast<const uint8_t*>(w.data) + r * RowBytes(*traits, w.cols);
    DequantizeRow(w.type, src, row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x.data() + t * w.cols;
      double act_bound = 0, magnitude = 0;
      const int64_t groups = quantized ? w.cols / kQK : 1;  // float weights: one group
      for (int64_t b = 0; b < groups; ++b) {
        const int64_t k0 = quantized ? b * kQK : 0, k1 = quantized ? k0 + kQK : w.cols;
        double amax = 0, wsum = 0, xsum = 0;
        // K-quant weights meet activations scaled per 256 (Q8_K): the rounding step is the
        // super-block's amax / 127.
        const int64_t scale_elems = traits->block_elems == kQKK ? kQKK : kQK;
        const int64_t s0 = quantized ? k0 / scale_elems * scale_elems : 0;
        for (int64_t k = s0; quantized && k < s0 + scale_elems; ++k) {
          amax = std::max(amax, std::fabs(static_cast<double>(xt[k])));
        }
        for (int64_t k = k0; k < k1; ++k) {
          wsum += std::fabs(row[k]);
          xsum += std::fabs(xt[k]);
          magnitude += std::fabs(static_cast<double>(row[k]) * xt[k]);
        }
        if (quantized) act_bound += amax / 254.0 * wsum;
        if (quantized) magnitude += std::fabs(BlockMinimum(w.type, src, b)) * xsum;
      }
      // Activations are also rounded as llama.cpp rounds them: quantized blocks keep their
      // scale (and Q4_1's scaled sum) in fp16, F16 / BF16 weights meet F16 / BF16 activations.
      // Either is a relative error of at most 2^-11 (2^-8 for BF16) on each product.
      double rel = quantized || w.type == GgmlType::kF16 ? 1.0 / 2048 : 0.0;
      if (w.type == GgmlType::kBF16) rel = 1.0 / 256;
      const double tol = 1.0001 * act_bound + (1e-5 + 1.01 * rel) * magnitude + 1e-30;
      const double g = got[t * w.rows + r], e = want[t * w.rows + r];
      err2 += (g - e) * (g - e);
      ref2 += e * e;
      if (!(std::fabs(g - e) <= tol) && failures++ < 5) {
        ADD_FAILURE() << what << " row " << r << " token " << t << ": got " << g << " want " << e
                      << " tol " << tol;
      }
    }
  }
  EXPECT_EQ(failures, 0) << what;
  // Int8 activations leave an NMSE of ~1e-4 on these inputs (~3e-5 without the outliers);
  // F16 / BF16 activation rounding ~1e-7 / ~1e-5. Per 256 (the K-quants' Q8_K) nearly every
  // scale sees one of the 20x outliers: up to ~6e-3 (a single token, 768 columns).
  if (ref2 > 0) {
    const double nmse_bound = traits->block_elems == kQKK     ? 1e-2
                              : quantized                     ? 1e-3
                              : w.type == GgmlType::kBF16     ? 1e-4
                              : w.type == GgmlType::kF16      ? 1e-6
                                                              : 1e-10;
    EXPECT_LT(err2 / ref2, nmse_bound) << what;
  }
}

const GgmlType kAllTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16,
                              GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
                              GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
                              GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

bool IsKQuant(GgmlType type) {
  return TraitsOf(static_cast<uint32_t>(type))->block_elems == kQKK;
}
// A row length valid for `type` near `cols` (K-quants need multiples of 256).
int64_t ColsFor(GgmlType type, int64_t cols) {
  return IsKQuant(type) ? (cols + kQKK - 1) / kQKK * kQKK : cols;
}

// Bytes per row and 32-element block of the packed layout (kernels/cpu/packed_layout.h), for
// the K types, whose packed form (f32 scales per 32) is larger than the source (10.5, 13.75,
// 18, 22, 26.25).
struct PackedSize {
  GgmlType type;
  int packed_bytes;
};
constexpr PackedSize kExpandedTypes[] = {
    {GgmlType::kQ2_K, 48}, {GgmlType::kQ3_K, 40}, {GgmlType::kQ4_K, 24},
    {GgmlType::kQ5_K, 28}, {GgmlType::kQ6_K, 40}};

// llama.cpp's Q8_K rule: the first element of largest magnitude sets iscale = -127 / x_m (sign
// included), every block of the 256 shares d = 1 / iscale in f32, s is per block of 32.
TEST(Q8ActivationsTest, Q8KScalesPerSuperBlockFromTheFirstLargestElement) {
  std::vector<float> x(2 * kQKK, 0.0f);
  x[5] = -2.54f;  // first of the two largest: max = -2.54, iscale = 50
  x[7] = 2.54f;
  x[40] = 1.0f;   // block 1
  x[41] = 0.01f;  // 0.5: rounds to even (0)
  x[42] = 0.03f;  // 1.5: rounds to even (2)
  std::vector<uint8_t> buffer(Q8ActivationBytes(1, 16));
  const Q8Activations act = Q8ActivationsIn(buffer.data(), 1, 16);
  QuantizeActivations(x.data(), 0, 1, 0, act, ActivationScales::kQ8_K);
  const float iscale = -127.0f / -2.54f;
  for (int b = 0; b < 8; ++b) EXPECT_EQ(act.d[act.Index(b, 0)], 1.0f / iscale) << b;
  const int8_t* q0 = act.qs + act.Index(0, 0) * kQK;
  const int8_t* q1 = act.qs + act.Index(1, 0) * kQK;
  EXPECT_EQ(q0[5], -127);
  EXPECT_EQ(q0[7], 127);
  EXPECT_EQ(q1[8], 50);
  EXPECT_EQ(q1[9], static_cast<int8_t>(std::nearbyint(iscale * 0.01f)));
  EXPECT_EQ(q1[10], static_cast<int8_t>(std::nearbyint(iscale * 0.03f)));
  EXPECT_EQ(act.s[act.Index(0, 0)], 0.0f);
  EXPECT_EQ(act.s[act.Index(1, 0)], act.d[act.Index(1, 0)] * static_cast<float>(q1[8] + q1[9] + q1[10]));
  // Per 16 (Q2_K's minimums): elements 8..10 of block 1 are in its first half.
  EXPECT_EQ(act.sum16[2 * act.Index(1, 0)], q1[8] + q1[9] + q1[10]);
  EXPECT_EQ(act.sum16[2 * act.Index(1, 0) + 1], 0);
  EXPECT_EQ(act.sum16[2 * act.Index(0, 0)], 0);  // -127 + 127
  // The second super-block is all zeros: d = 0, q = 0.
  EXPECT_EQ(act.d[act.Index(8, 0)], 0.0f);
  for (int e = 0; e < kQK; ++e) EXPECT_EQ(act.qs[act.Index(8, 0) * kQK + e], 0);
}

TEST(PackedMatrixTest, RepacksQuantizedToSourceSizeAndBorrowsFloats) {
  for (GgmlType type : kAllTypes) {
    if (layout::HasF32Scales(type)) continue;  // RepacksKTypesWithF32Scales
    const auto w = RandomWeights(type, 37, 576, 1);
    const PackedMatrix p = PackedMatrix::Pack({type, w.data(), 37, 576});
    EXPECT_EQ(p.rows(), 37);
    EXPECT_EQ(p.cols(), 576);
    EXPECT_EQ(p.type(), type);
    const bool quantized = IsQuantized(type);
    EXPECT_EQ(p.borrows_source(), !quantized);
    if (quantized) {
      // 37 rows round up to 48 (3 tiles of 16); each tile pads to 64 bytes at most.
      EXPECT_LE(p.owned_bytes(), SourceBytes(type, 48, 576) + 3 * 64);
      EXPECT_GE(p.owned_bytes(), SourceBytes(type, 48, 576));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data()) % 64, 0u);
    } else {
      EXPECT_EQ(p.owned_bytes(), 0u);
      EXPECT_EQ(p.data(), w.data());
    }
  }
}

TEST(PackedMatrixTest, RepacksKTypesWithF32Scales) {
  for (const PackedSize& s : kExpandedTypes) {
    const int64_t cols = 512;
    const auto w = RandomWeights(s.type, 37, cols, 1);
    const PackedMatrix p = PackedMatrix::Pack({s.type, w.data(), 37, cols});
    EXPECT_FALSE(p.borrows_source());
    // 3 tiles of 16 rows, each padded to 64 bytes at most.
    const size_t want = 3 * 16 * (cols / kQK) * s.packed_bytes;
    EXPECT_GE(p.owned_bytes(), want) << int(s.type);
    EXPECT_LE(p.owned_bytes(), want + 3 * 64) << int(s.type);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data()) % 64, 0u);
  }
}

// Bit-identical: the packed layout's scales are exact products, evaluated as the reference does.
TEST(PackedMatrixTest, GetRowMatchesDequantizeRow) {
  for (GgmlType type : kAllTypes) {
    const int64_t cols = ColsFor(type, 96);
    const auto w = RandomWeights(type, 21, cols, 2);
    const PackedMatrix p = PackedMatrix::Pack({type, w.data(), 21, cols});
    std::vector<float> got(cols), want(cols);
    for (int64_t r = 0; r < 21; ++r) {
      p.GetRow(r, got.data());
      DequantizeRow(type, w.data() + r * SourceBytes(type, 1, cols), want.data(), cols);
      for (int k = 0; k < cols; ++k)
        ASSERT_EQ(got[k], want[k]) << "type " << int(type) << " row " << r << " col " << k;
    }
  }
}

TEST(PackedMatrixTest, MatmulMatchesRefForEveryTypeIsaAndTokenCount) {
  ThreadPool pool(2);
  struct Shape {
    int64_t rows, cols;
  };
  // 37 rows: two full tiles and a 5-row tail; 5 rows: a single partial tile (split over tokens).
  const Shape shapes[] = {{37, 576}, {5, 64}, {64, 1536}};
  const int64_t token_counts[] = {1, 2, 7, 32, 100};
  for (GgmlType type : kAllTypes) {
    for (Shape s : shapes) {
      s.cols = ColsFor(type, s.cols);  // 576 -> 768 and 64 -> 256 for the K-quants
      const auto w = RandomWeights(type, s.rows, s.cols, 3);
      const MatrixView view{type, w.data(), s.rows, s.cols};
      const PackedMatrix p = PackedMatrix::Pack(view);
      for (int64_t n : token_counts) {
        const auto x = RandomActivations(n, s.cols, static_cast<uint32_t>(n));
        for (Isa isa : internal::CompiledIsas()) {
          std::vector<float> y(n * s.rows, NAN);
          internal::MatmulWithIsa(p, x.data(), n, y.data(), pool, isa);
          char what[128];
          std::snprintf(what, sizeof(what), "type %d %ldx%ld n=%ld %s", int(type), long(s.rows),
                        long(s.cols), long(n), internal::IsaName(isa));
          ExpectMatchesRef(view, x, n, y, what);
        }
      }
    }
  }
}

TEST(PackedMatrixTest, FloatMatmulHandlesColumnsNotMultipleOf16) {
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    const auto w = RandomWeights(type, 9, 43, 4);
    const MatrixView view{type, w.data(), 9, 43};
    const PackedMatrix p = PackedMatrix::Pack(view);
    const auto x = RandomActivations(6, 43, 5);
    for (Isa isa : internal::CompiledIsas()) {
      std::vector<float> y(6 * 9, NAN);
      internal::MatmulWithIsa(p, x.data(), 6, y.data(), pool, isa);
      ExpectMatchesRef(view, x, 6, y, std::string("float tail ") + internal::IsaName(isa));
    }
  }
}

TEST(PackedMatrixTest, LongPromptsAndOtherPoolSizesAgree) {
  // 300 tokens cross the kernels' 64- and 128-token chunks; 1 and 3 threads split the work
  // differently.
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    for (GgmlType type : {GgmlType::kQ4_1, GgmlType::kQ8_0, GgmlType::kQ5_0, GgmlType::kQ2_K,
                          GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
      const int64_t cols = ColsFor(type, 128);
      const auto w = RandomWeights(type, 50, cols, 6);
      const MatrixView view{type, w.data(), 50, cols};
      const auto x = RandomActivations(300, cols, 7);
      std::vector<float> y(300 * 50, NAN);
      Matmul(PackedMatrix::Pack(view), x.data(), 300, y.data(), pool);
      ExpectMatchesRef(view, x, 300, y, "long prompt, threads " + std::to_string(threads));
    }
  }
}

// ---- real tensors from the default model ----

// Minimal GGUF v3 reader for this test: tensor name -> (type, dims, absolute file offset).
struct TensorLoc {
  uint32_t type;
  std::vector<int64_t> dims;
  uint64_t offset;
};
class MiniGguf {
 public:
  explicit MiniGguf(const std::string& path) : in_(path, std::ios::binary) {}
  bool ok() const { return static_cast<bool>(in_); }
  std::map<std::string, TensorLoc> ReadTensors() {
    std::map<std::string, TensorLoc> out;
    if (Get<uint32_t>() != 0x46554747u || Get<uint32_t>() != 3) return out;  // "GGUF", v3
    const uint64_t n_tensors = Get<uint64_t>(), n_kv = Get<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = String();
      const uint32_t type = Get<uint32_t>();
      if (key == "general.alignment" && type == 4) {
        alignment = Get<uint32_t>();
      } else {
        SkipValue(type);
      }
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const std::string name = String();
      TensorLoc t;
      t.dims.resize(Get<uint32_t>());
      for (int64_t& d : t.dims) d = static_cast<int64_t>(Get<uint64_t>());
      t.type = Get<uint32_t>();
      t.offset = Get<uint64_t>();
      out[name] = t;
    }
    const uint64_t data_start =
        (static_cast<uint64_t>(in_.tellg()) + alignment - 1) / alignment * alignment;
    for (auto& [name, t] : out) t.offset += data_start;
    return out;
  }
  std::vector<uint8_t> Read(uint64_t offset, size_t bytes) {
    std::vector<uint8_t> data(bytes);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(bytes));
    return data;
  }

 private:
  template <typename T>
  T Get() {
    T v{};
    in_.read(reinterpret_cast<char*>(&v), sizeof(T));
    return v;
  }
  std::string String() {
    std::string s(Get<uint64_t>(), '\0');
    in_.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
  }
  void SkipValue(uint32_t type) {
    static constexpr int kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      String();
    } else if (type == 9) {
      const uint32_t elem = Get<uint32_t>();
      const uint64_t n = Get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) SkipValue(elem);
    } else {
      in_.seekg(kSizes[type], std::ios::cur);
    }
  }
  std::ifstream in_;
};

TEST(PackedMatrixTest, MatchesRefOnSmolLm2Tensors) {
  MiniGguf gguf(testing::SmolLmPath());
  if (!gguf.ok()) GTEST_SKIP() << "default model not present";
  const auto tensors = gguf.ReadTensors();
  ThreadPool pool(2);
  // name, rows to test (the 49152-row embedding is sampled by its first 1000 rows).
  const std::pair<const char*, int64_t> picks[] = {{"blk.0.attn_q.weight", 576},
                                                   {"blk.3.attn_k.weight", 192},
                                                   {"blk.7.ffn_down.weight", 576},
                                                   {"token_embd.weight", 1000}};
  for (const auto& [name, rows] : picks) {
    const auto it = tensors.find(name);
    ASSERT_NE(it, tensors.end()) << name;
    const TensorLoc& t = it->second;
    const GgmlType type = static_cast<GgmlType>(t.type);
    const int64_t cols = t.dims[0];
    const auto data = gguf.Read(t.offset, SourceBytes(type, rows, cols));
    const MatrixView view{type, data.data(), rows, cols};
    const PackedMatrix p = PackedMatrix::Pack(view);
    for (int64_t n : {1, 33}) {
      const auto x = RandomActivations(n, cols, 11);
      std::vector<float> y(n * rows, NAN);
      Matmul(p, x.data(), n, y.data(), pool);
      ExpectMatchesRef(view, x, n, y, std::string(name) + " n=" + std::to_string(n));
    }
  }
}

// The Q4_K_M that llama-quantize makes of the default model (scripts/peer/make-kquant-models.sh):
// the first 64 rows of the first tensor of each matrix type it holds (Q5_0, Q8_0, Q4_K, Q6_K).
TEST(PackedMatrixTest, MatchesRefOnSmolLm2Q4KMTensors) {
  MiniGguf gguf(testing::SmolLmQ4KMPath());
  if (!gguf.ok()) GTEST_SKIP() << "no Q4_K_M of the default model (scripts/peer/make-kquant-models.sh)";
  ThreadPool pool(2);
  std::map<uint32_t, std::string> first_of_type;
  const auto tensors = gguf.ReadTensors();
  for (const auto& [name, t] : tensors) {
    if (t.dims.size() == 2 && !first_of_type.count(t.type)) first_of_type[t.type] = name;
  }
  for (const uint32_t want : {6u, 12u, 14u}) {  // Q5_0, Q4_K, Q6_K
    EXPECT_TRUE(first_of_type.count(want)) << "no tensor of type " << want;
  }
  for (const auto& [type_id, name] : first_of_type) {
    const TensorLoc& t = tensors.at(name);
    const GgmlType type = static_cast<GgmlType>(type_id);
    const int64_t rows = std::min<int64_t>(64, t.dims[1]), cols = t.dims[0];
    const auto data = gguf.Read(t.offset, SourceBytes(type, rows, cols));
    const MatrixView view{type, data.data(), rows, cols};
    const PackedMatrix p = PackedMatrix::Pack(view);
    for (int64_t n : {1, 33}) {
      const auto x = RandomActivations(n, cols, 12);
      std::vector<float> y(n * rows, NAN);
      Matmul(p, x.data(), n, y.data(), pool);
      ExpectMatchesRef(view, x, n, y, name + " n=" + std::to_string(n));
    }
  }
}

}  // namespace
}  // namespace troupe::cpu
