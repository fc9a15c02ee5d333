// Prefill attention over the paged KV cache, on the GPU: the new tokens of a sequence (a prompt
// chunk after a cached prefix) attend causally to every key up to their own position. Its
// reference is ref::PagedAttention (kernels/paged_attention.h) over the same cache in f32.
//
// Flash-attention style (FA2): a CUDA block per (tile of tokens, kv head) packs the tile's
// tokens times the GQA group's query heads into 64 query rows (FA3's pack-GQA, so each K/V tile
// is read once per group), streams 64-key tiles of K and V from the pages into shared memory
// through a two-stage cp.async pipeline, computes S = Q K^T and P V on tensor cores (mma.sync
// m16n8k16, bf16 in, f32 accumulate; kernels/cuda/tensor_core.cuh) with Q, S, P and O in
// registers, and keeps an online softmax per row. 80 KB of shared memory at head dim 128, so
// two blocks share an SM.
#pragma once

#include <cstdint>

#include "kernels/cuda/decode_attention.h"

namespace troupe::cuda {

// Query rows of a block: a tile's tokens times the GQA group.
constexpr int kPrefillTileRows = 64;
// Tokens per tile for GQA group `group` (64, 16 at group 4, 21 at group 3).
constexpr int PrefillTileTokens(int group) { return kPrefillTileRows / group; }

struct PrefillAttentionArgs {
  PagedKv kv;
  const Bf16* q = nullptr;          // [n_rows, n_heads, head_dim]
  Bf16* out = nullptr;              // [n_rows, n_heads, head_dim]
  // [n_tiles, 4]: {sequence, first row, rows (1..PrefillTileTokens(group)), position of the
  // first row}. The rows of a tile are consecutive tokens of one sequence at consecutive
  // positions.
  const int32_t* tiles = nullptr;
  int n_tiles = 0;
  int n_heads = 0;
  float scale = 1.0f;
};

bool PrefillAttentionSupports(int head_dim, int group);

// Asynchronous on `stream`. REQUIRES: PrefillAttentionSupports(...); K/V of positions
// [0, first position + rows) of each tile's sequence are written.
void PrefillAttention(const PrefillAttentionArgs& args, Stream stream);

}  // namespace troupe::cuda
