// Row conversions between f32 and IEEE f16 (round to nearest even), eight lanes at a time with
// F16C where the build has it and bit-exact scalar code (ggml_types.h) elsewhere.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace troupe {

inline void Fp16RowToFp32(const Fp16* src, float* dst, int n) {
  int i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) dst[i] = Fp16ToFp32(src[i]);
}

inline void Fp32RowToFp16(const float* src, Fp16* dst, int n) {
  int i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
#endif
  for (; i < n; ++i) dst[i] = Fp32ToFp16(src[i]);
}

// x[i] = the f32 value of x[i] rounded to f16.
inline void RoundRowToFp16(float* x, int n) {
  int i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) x[i] = Fp16ToFp32(Fp32ToFp16(x[i]));
}

}  // namespace troupe
