// RoPE fused with the paged KV write, on the GPU. Its reference is the CPU backend's sequence
// (the q/k/v bias add,) ref::Rope (q and k) then ref::KvWrite (kernels/rope.h, kernels/paged_attention.h).
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

namespace troupe::cuda {

struct RopeKvWriteArgs {
  const float* qkv = nullptr;        // [n_tokens, (n_heads + 2 * n_kv_heads) * head_dim]: Q|K|V
  const float* bias = nullptr;       // [(n_heads + 2 * n_kv_heads) * head_dim] added to every
                                     // row before RoPE (Qwen2's q/k/v biases); null = none
  Bf16* q_out = nullptr;             // [n_tokens, n_heads, head_dim] rotated queries
  Bf16* k_cache = nullptr;           // [num_slots, n_kv_heads, head_dim] this layer's K
  Bf16* v_cache = nullptr;           // same, V
  const int32_t* positions = nullptr;  // [n_tokens]
  const int64_t* slots = nullptr;    // [n_tokens] cache slot; -1 = skip (padding)
  const float* inv_freq = nullptr;   // [rot_dim / 2] from RopeInvFreq
  int n_tokens = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int rot_dim = 0;                   // even, <= head_dim; dims past it are copied unrotated
  bool neox = false;                 // pairs (i, i + rot/2) instead of (2i, 2i + 1)
};

// One block per token; the angles are taken in double, as the CPU reference does.
// REQUIRES: rot_dim / 2 <= 256.
void RopeKvWrite(const RopeKvWriteArgs& args, Stream stream);

}  // namespace troupe::cuda
