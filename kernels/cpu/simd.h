// Portable SIMD building blocks for the CPU kernels and the CPU-side model code (embedder,
// sampler): a 16-float vector type, branch-free exp polynomials and lane-split sums. Written with
// GCC/Clang vector types and plain arithmetic rather than intrinsics, so that every file builds
// for any target and GCC's auto-vectorizer (plain -O3, no -ffast-math) turns the loops that call
// them into AVX2 or AVX-512 code. Header-only (the callers' loops must inline them); pure
// functions, safe from any thread.
//
// Reference beside the fast paths: std::exp is the reference for both exps (tests/kernels/
// simd_test.cc compares them over their ranges); a sequential sum for LaneSum.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace troupe::cpu {

// ---- 16-float vectors ----

// 16 floats as one GCC/Clang vector: an explicit register tile, lowered to one AVX-512 register,
// two AVX ones or four SSE ones. (Written with plain float arrays, GCC 12 spills such tiles.)
// Arithmetic is element-wise (`acc += s * v` broadcasts the scalar s).
typedef float Vec16 __attribute__((vector_size(64)));
constexpr int kVec16Lanes = 16;

// Without AVX-512, GCC warns that passing a Vec16 by value changes the ABI (-Wpsabi). These
// helpers are inline and always inlined into their callers; no Vec16 crosses a library boundary.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

// v[l] = p[l] for l < 16. p needs no alignment.
inline Vec16 Load16(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// p[l] = v[l] for l < 16. p needs no alignment.
inline void Store16(float* p, Vec16 v) { std::memcpy(p, &v, sizeof(v)); }

#pragma GCC diagnostic pop

// ---- sums ----

// Sum of x[0..n) in kVec16Lanes interleaved partial sums of type Acc (float or double), combined
// in a fixed order: the tail x[n - n % 16 ..) first, then lanes 0..15. Vectorizes without
// reassociation and gives the same bits on every run; a different rounding order than a
// sequential sum (exact whenever every partial sum is, e.g. small integers).
template <typename Acc>
inline Acc LaneSum(const float* x, int64_t n) {
  Acc acc[kVec16Lanes] = {};
  int64_t i = 0;
  for (; i + kVec16Lanes <= n; i += kVec16Lanes) {
    for (int l = 0; l < kVec16Lanes; ++l) acc[l] += x[i + l];
  }
  Acc sum = 0;
  for (; i < n; ++i) sum += x[i];
  for (int l = 0; l < kVec16Lanes; ++l) sum += acc[l];
  return sum;
}

// ---- exp ----
// Both exps write e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln(2) / 2, ln 2 split in two
// so that n * kExpLn2Hi is exact for |n| <= 2^9 (kExpLn2Hi has 11 significant bits), and 2^n
// built from exponent bits. They differ in domain and tail handling, and their callers depend on
// their exact bits (seeded sampling, the embedder's outputs), so both stay.

inline constexpr float kExpLog2e = 1.44269504088896341f;
inline constexpr float kExpLn2Hi = 0.693359375f;
inline constexpr float kExpLn2Lo = -2.12194440e-4f;

// e^x for any x, relative error <= ~2e-7 (float rounding plus a degree-7 Taylor tail); inputs
// outside [-87, 88] are clamped to it, so no infinities or denormals result. Clamps are ternaries
// and rounding is std::nearbyint: std::fmin/fmax/floor keep GCC 12 from vectorizing the caller.
inline float FastExp(float x) {
  constexpr float kMin = -87.0f;
  constexpr float kMax = 88.0f;
  x = x < kMin ? kMin : x;
  x = x > kMax ? kMax : x;
  // nearbyint, not floor: GCC vectorizes floor only under -fno-trapping-math.
  const float n = std::nearbyint(x * kExpLog2e);
  const float r = (x - n * kExpLn2Hi) - n * kExpLn2Lo;
  // Taylor series of e^r to r^7 (the r^8 term is < 6e-9 for |r| <= 0.35).
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n is in [-126, 127] after the clamp: 2^n is a normal float.
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return p * scale;
}

// e^x for x <= 0, within 2.2e-7 relative; 0 for x <= -87 and for NaN (positive x is outside
// the contract and also gives 0). Plain IEEE arithmetic and integer masks rather than branches or
// float-compare selects (which -ftrapping-math keeps from being if-converted), so the loop that
// calls it vectorizes on AVX2 and AVX-512 without -ffast-math, and its bits do not depend on the
// C library's expf.
inline float FastExpNonPositive(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: x + kRound keeps round(x) in low bits
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  // +0, or sign set and magnitude below 87 (0xC2AE0000 is -87.0f); excludes NaN and -inf.
  const bool live = (bits == 0u) | (bits - 0x80000000u < 0x42AE0000u);
  const uint32_t live_mask = 0u - static_cast<uint32_t>(live);
  const float xc = std::bit_cast<float>(bits & live_mask);  // dead lanes compute e^0
  const float shifted = xc * kExpLog2e + kRound;
  const float n = shifted - kRound;                      // round(xc / ln 2), in [-126, 0]
  const float r = (xc - n * kExpLn2Hi) - n * kExpLn2Lo;  // |r| <= ln2 / 2
  // Taylor series of e^r to r^6: truncation error < 1.3e-7 relative.
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t n_int = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const float scale = std::bit_cast<float>((n_int + 127) << 23);  // 2^n, a normal float
  return std::bit_cast<float>(std::bit_cast<uint32_t>(p * scale) & live_mask);
}

}  // namespace troupe::cpu
