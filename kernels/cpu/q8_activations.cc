// Per-block int8 quantization of activations (AVX-512 or portable scalar).
#include "kernels/cpu/q8_activations.h"

#include <cmath>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics headers trip its own -Wmaybe-uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

#include "kernels/ggml_types.h"

namespace troupe::cpu {

namespace {
int64_t PaddedTokens(int64_t n_tokens) {
  return (n_tokens + kActGroup - 1) / kActGroup * kActGroup;
}
}  // namespace

size_t Q8ActivationBytes(int64_t n_tokens, int64_t num_blocks) {
  const size_t n = static_cast<size_t>(PaddedTokens(n_tokens) * num_blocks);
  return n * kQK + 5 * n * sizeof(float);
}

Q8Activations Q8ActivationsIn(uint8_t* buffer, int64_t n_tokens, int64_t num_blocks) {
  const size_t n = static_cast<size_t>(PaddedTokens(n_tokens) * num_blocks);
  Q8Activations a;
  a.n_tokens = n_tokens;
  a.num_blocks = num_blocks;
  a.qs = reinterpret_cast<int8_t*>(buffer);
  a.d = reinterpret_cast<float*>(buffer + n * kQK);
  a.s = a.d + n;
  a.bias = reinterpret_cast<int32_t*>(a.s + n);
  a.sum16 = a.bias + n;
  return a;
}

namespace {
// Quantizes x[0, 32) into q[0, 32); returns the scale and stores sum(q) in *sum.
float QuantizeBlock(const float* x, int8_t* q, int32_t* sum) {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  const __m512 a = _mm512_loadu_ps(x);
  const __m512 b = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  // cvtps rounds to nearest even (the default MXCSR mode), like std::nearbyint below.
  const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(id)));
  const __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, _mm512_set1_ps(id)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qa));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(qb));
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
  return amax / 127.0f;
#else
  float amax = 0.0f;
  for (int i = 0; i < kQK; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int i = 0; i < kQK; ++i) {
    float v = std::nearbyint(x[i] * id);
    v = std::fmin(std::fmax(v, -127.0f), 127.0f);
    q[i] = static_cast<int8_t>(v);
    s += q[i];
  }
  *sum = s;
  return amax / 127.0f;
#endif
}

// llama.cpp's quantize_row_q8_K_ref on x[0, 256): the 8 blocks' q into q[8][32], the sums of
// each block's two halves into sums[8][2]; returns d (the same for all 8).
float QuantizeSuperBlock(const float* x, int8_t* const q[8], int32_t sums[8][2]) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < kQKK; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  const float iscale = amax > 0.0f ? -127.0f / max : 0.0f;
  for (int b = 0; b < kQKK / kQK; ++b) {
    sums[b][0] = sums[b][1] = 0;
    for (int e = 0; e < kQK; ++e) {
      const float v = std::nearbyint(iscale * x[b * kQK + e]);  // ties to even, as ggml's
      q[b][e] = static_cast<int8_t>(std::fmin(v, 127.0f));
      sums[b][e / 16] += q[b][e];
    }
  }
  return amax > 0.0f ? 1.0f / iscale : 0.0f;
}
}  // namespace

void QuantizeActivations(const float* x, int64_t t_begin, int64_t t_end, int32_t offset,
                         const Q8Activations& out, ActivationScales scales) {
  const int64_t cols = out.num_blocks * kQK;
  if (scales == ActivationScales::kQ8_K) {
    constexpr int kBlocks = kQKK / kQK;
    for (int64_t t = t_begin; t < t_end; ++t) {
      for (int64_t b0 = 0; b0 < out.num_blocks; b0 += kBlocks) {
        int8_t* q[kBlocks];
        int32_t sums[kBlocks][2];
        for (int k = 0; k < kBlocks; ++k) q[k] = out.qs + out.Index(b0 + k, t) * kQK;
        const float d = QuantizeSuperBlock(x + t * cols + b0 * kQK, q, sums);
        for (int k = 0; k < kBlocks; ++k) {
          const int64_t i = out.Index(b0 + k, t);
          const int32_t sum = sums[k][0] + sums[k][1];
          out.d[i] = d;
          out.s[i] = d * static_cast<float>(sum);
          out.bias[i] = -offset * sum;
          out.sum16[2 * i] = sums[k][0];
          out.sum16[2 * i + 1] = sums[k][1];
        }
      }
    }
    return;
  }
  for (int64_t t = t_begin; t < t_end; ++t) {
    for (int64_t b = 0; b < out.num_blocks; ++b) {
      const int64_t i = out.Index(b, t);
      int32_t sum = 0;
      const float d = QuantizeBlock(x + t * cols + b * kQK, out.qs + i * kQK, &sum);
      // llama.cpp stores these in fp16 (Q8_0 / Q8_1 activation blocks); rounding them the
      // same way makes troupe's quantized matmuls agree with it to float rounding.
      out.d[i] = Fp16ToFp32(Fp32ToFp16(d));
      out.s[i] = Fp16ToFp32(Fp32ToFp16(d * static_cast<float>(sum)));
      out.bias[i] = -offset * sum;
    }
  }
}

}  // namespace troupe::cpu
