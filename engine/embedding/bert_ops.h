// The element-wise and per-row operations of a BERT encoder on CPU (float32): exp and erf-GELU
// written so that GCC vectorizes them without -ffast-math (on kernels/cpu/simd.h), LayerNorm,
// and unmasked multi-head self-attention over one sequence. Pure functions: safe from any thread.
#pragma once

#include <cstdint>

namespace troupe::bert {

// The exact-erf GELU, 0.5 * x * (1 + erf(x / sqrt(2))), with erf from Abramowitz & Stegun 7.1.26
// (absolute error <= 1.5e-7), so |Gelu(x) - gelu(x)| <= 1e-7 * |x| + float rounding.
float Gelu(float x);

// x[i] = cpu::FastExp(x[i]) (kernels/cpu/simd.h: relative error <= ~2e-7, inputs clamped to
// [-87, 88]) for i < n, and likewise for Gelu; vectorized.
void ExpInPlace(float* x, int64_t n);
void GeluInPlace(float* x, int64_t n);

// Row-wise LayerNorm in place, as torch.nn.LayerNorm (biased variance):
// x[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta.
struct LayerNormArgs {
  float* x = nullptr;            // [rows, dim]
  const float* gamma = nullptr;  // [dim]
  const float* beta = nullptr;   // [dim]
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-12f;
};
void LayerNorm(const LayerNormArgs& args);

// Bidirectional multi-head self-attention over one sequence without padding (every token sees
// every token): for each head h, out_h = softmax(q_h k_h^T / sqrt(head_dim)) v_h.
// REQUIRES: n_tokens >= 1; out does not alias qkv.
struct SelfAttentionArgs {
  const float* qkv = nullptr;  // [n_tokens, 3 * num_heads * head_dim]: q | k | v, head-major
  float* out = nullptr;        // [n_tokens, num_heads * head_dim]
  int64_t n_tokens = 0;
  int num_heads = 0;
  int head_dim = 0;
};
void SelfAttention(const SelfAttentionArgs& args);

}  // namespace troupe::bert
