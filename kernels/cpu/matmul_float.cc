// Matmul over float weights (F32, F16, BF16) used in place from the GGUF mapping. Rows are taken
// 4 at a time (F16/BF16 rows converted to f32 into a per-thread 4-row buffer, never the whole
// matrix) and multiplied with tokens 4 at a time: a 4x4 register tile of f32 FMA accumulators.
#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_isa.h"

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics headers trip its own -Wmaybe-uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace troupe::cpu::internal {

namespace {

constexpr int kRowGroup = 4;
constexpr int kTokenGroup = 4;
constexpr int64_t kChunkTokens = 128;  // tokens whose activations stay in L2 across row groups

// Converts `n` elements of a float-type row to f32.
void ToFloat(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  if (type == GgmlType::kF16) {
    for (; i + 16 <= n; i += 16) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
  } else if (type == GgmlType::kBF16) {
    for (; i + 16 <= n; i += 16) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
      const __m512i f = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
      _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(f));
    }
  }
#endif
  if (i < n) DequantizeRow(type, src + 2 * i, dst + i, n - i);
}

#if defined(__AVX512F__)
// Horizontal sums of four vectors: returns [sum(a), sum(b), sum(c), sum(d)].
inline __m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c, d.
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  // Per 128-bit lane: [a, b, c, d] partial sums.
  const __m512 abcd = _mm512_add_ps(
      _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
  const __m256 half =
      _mm256_add_ps(_mm512_castps512_ps256(abcd),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

// y[t * ldy + r] = dot(w[r], x[t]) for r < nr (<= 4), t < NT. Missing rows repeat row 0.
template <int NT>
void DotTileSimd(const float* const* w, int nr, const float* const* x, int64_t cols, float* y,
                 int64_t ldy) {
  __m512 acc[kRowGroup][NT];
#pragma GCC unroll 4
  for (int r = 0; r < kRowGroup; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < cols; k += 16) {
    const __mmask16 m = cols - k >= 16 ? 0xffff : static_cast<__mmask16>((1u << (cols - k)) - 1);
    __m512 wv[kRowGroup];
#pragma GCC unroll 4
    for (int r = 0; r < kRowGroup; ++r) wv[r] = _mm512_maskz_loadu_ps(m, w[r] + k);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[t] + k);
#pragma GCC unroll 4
      for (int r = 0; r < kRowGroup; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  const __mmask8 rows = static_cast<__mmask8>((1u << nr) - 1);
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) {
    _mm_mask_storeu_ps(y + t * ldy, rows, Sum4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
  }
}
#endif

// y[t * ldy + r] = dot(w[r], x[t]) for r < nr, t < nt (both <= 4). Missing rows repeat row 0.
void DotTile(const float* const* w, int nr, const float* const* x, int nt, int64_t cols, float* y,
             int64_t ldy, bool simd) {
#if defined(__AVX512F__)
  if (simd) {
    switch (nt) {
      case 1:
        return DotTileSimd<1>(w, nr, x, cols, y, ldy);
      case 2:
        return DotTileSimd<2>(w, nr, x, cols, y, ldy);
      case 3:
        return DotTileSimd<3>(w, nr, x, cols, y, ldy);
      default:
        return DotTileSimd<4>(w, nr, x, cols, y, ldy);
    }
  }
#endif
  (void)simd;
  for (int t = 0; t < nt; ++t) {
    for (int r = 0; r < nr; ++r) {
      float sum = 0.0f;
      for (int64_t k = 0; k < cols; ++k) sum += w[r][k] * x[t][k];
      y[t * ldy + r] = sum;
    }
  }
}

}  // namespace

void FloatRows(const FloatRowArgs& args, Isa isa) {
  const PackedMatrix& w = *args.w;
  const int64_t cols = w.cols();
  const GgmlType type = w.type();
  const int64_t elem_bytes = type == GgmlType::kF32 ? 4 : 2;
  const bool simd = isa == Isa::kAvx512Vnni;
  thread_local std::vector<float> converted;  // [kRowGroup, cols] for F16/BF16
  if (type != GgmlType::kF32 && converted.size() < static_cast<size_t>(kRowGroup * cols)) {
    converted.resize(kRowGroup * cols);
  }
  for (int64_t c0 = 0; c0 < args.n_tokens; c0 += kChunkTokens) {
    const int64_t c1 = std::min(args.n_tokens, c0 + kChunkTokens);
    for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += kRowGroup) {
      const int nr = static_cast<int>(std::min<int64_t>(kRowGroup, args.row_end - r0));
      const float* rows[kRowGroup];
      for (int r = 0; r < kRowGroup; ++r) {
        const int64_t row = r0 + std::min(r, nr - 1);
        const uint8_t* src = w.data() + row * cols * elem_bytes;
        if (type == GgmlType::kF32) {
          rows[r] = reinterpret_cast<const float*>(src);
        } else {
          if (r < nr) ToFloat(type, src, converted.data() + r * cols, cols);
          rows[r] = converted.data() + std::min(r, nr - 1) * cols;
        }
      }
      for (int64_t t0 = c0; t0 < c1; t0 += kTokenGroup) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokenGroup, c1 - t0));
        const float* xs[kTokenGroup];
        for (int t = 0; t < kTokenGroup; ++t) xs[t] = args.x + (t0 + std::min(t, nt - 1)) * cols;
        DotTile(rows, nr, xs, nt, cols, args.y + t0 * w.rows() + r0, w.rows(), simd);
      }
    }
  }
}

}  // namespace troupe::cpu::internal
