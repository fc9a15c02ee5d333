// Activations quantized to int8 per 32-element block, the right-hand side of the quantized matmul
// kernels. Tokens are stored in groups of kActGroup: group g holds, block after block, the
// group's tokens' blocks, so a kernel walking a tile of <= kActGroup tokens over all blocks reads
// one contiguous stream (a block-major layout would put a block's tokens n_tokens * 32 bytes
// apart, which at n = 128 or 512 maps every block to the same L1 sets).
// Used on the engine thread and its pool's helpers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe::cpu {

constexpr int kActGroup = 8;

// Views into a caller-owned buffer (see Q8ActivationsIn). With i = Index(b, t):
// x[t, 32b + e] ~= d[i] * qs[32i + e]. Tokens t and t+1 of one group are adjacent (i + 1).
struct Q8Activations {
  int64_t n_tokens = 0;
  int64_t num_blocks = 0;   // cols / 32
  int8_t* qs = nullptr;     // [groups, num_blocks, kActGroup, 32], values in [-127, 127]
  float* d = nullptr;       // [groups, num_blocks, kActGroup] scale = amax / 127
  float* s = nullptr;       // same shape: d * sum(qs) (for Q4_1's minimum term)
  int32_t* bias = nullptr;  // same shape: -offset * sum(qs) (see QuantizeActivations)
  int32_t* sum16 = nullptr;  // [groups, num_blocks, kActGroup, 2]: sum(qs) of elements 0..15
                             // and 16..31 (Q8_K's bsums: the per-16 types); kQ8_K only

  int64_t Index(int64_t block, int64_t token) const {
    return ((token / kActGroup) * num_blocks + block) * kActGroup + token % kActGroup;
  }
};

// Bytes a buffer must hold for n_tokens x num_blocks blocks (n_tokens rounded up to a group).
size_t Q8ActivationBytes(int64_t n_tokens, int64_t num_blocks);

// Carves the arrays out of `buffer` (>= Q8ActivationBytes, 4-byte aligned).
Q8Activations Q8ActivationsIn(uint8_t* buffer, int64_t n_tokens, int64_t num_blocks);

// How the activations are scaled, following llama.cpp's vec_dot_type for the weights:
//   kQ8_0  per 32-block, d = amax / 127 with d and d * sum(q) rounded to fp16 (Q8_0 / Q8_1: the
//          weights of 32-element blocks)
//   kQ8_K  per 256 elements (Q8_K: the K-quant weights): iscale = -127 / x_m with x_m the first
//          element of largest magnitude, q = min(127, round(iscale * x)), d = 1 / iscale, in f32
//          (no fp16 rounding); each of the 8 blocks of 32 gets that d, s = d * sum(q) of its
//          own 32 and sum16 the integer sums per 16. REQUIRES num_blocks % 8 == 0.
enum class ActivationScales { kQ8_0, kQ8_K };

// Quantizes tokens [t_begin, t_end) of x[n_tokens, num_blocks * 32] into `out`: per block,
// d = amax / 127 and q = round(x / d) (kQ8_0; kQ8_K above). `offset` is the unsigned offset the weights are stored
// with in the kernel that will read `out` (8 for Q4_0, 128 for Q8_0 under VNNI, else 0): bias
// then lets the kernel start its int32 accumulator at -offset * sum(q), making
// sum((w + offset) * q) + bias == sum(w * q) exactly. Different token groups may be filled
// concurrently.
void QuantizeActivations(const float* x, int64_t t_begin, int64_t t_end, int32_t offset,
                         const Q8Activations& out,
                         ActivationScales scales = ActivationScales::kQ8_0);

}  // namespace troupe::cpu
