// Paged KV cache write and causal attention that reads K/V through per-sequence block tables.
// One layer's cache is [num_blocks, block_size, n_kv_heads, head_dim] f32 for K and for V;
// token t of a sequence lives in block block_table[t / block_size] at offset t % block_size.
#pragma once

#include <cstdint>

namespace troupe {

struct KvWriteArgs {
  const float* k = nullptr;      // [n_tokens, n_kv_heads * head_dim]
  const float* v = nullptr;      // [n_tokens, n_kv_heads * head_dim]
  float* k_cache = nullptr;      // [num_blocks, block_size, n_kv_heads * head_dim]
  float* v_cache = nullptr;      // same shape
  const int64_t* slots = nullptr;  // [n_tokens]: block_id * block_size + offset; -1 = skip
  int64_t n_tokens = 0;
  int kv_dim = 0;                // n_kv_heads * head_dim
};

struct PagedAttentionArgs {
  const float* q = nullptr;        // [n_tokens, n_heads, head_dim]
  const float* k_cache = nullptr;  // [num_blocks, block_size, n_kv_heads, head_dim]
  const float* v_cache = nullptr;  // same
  float* out = nullptr;            // [n_tokens, n_heads, head_dim]
  const int32_t* token_seq = nullptr;     // [n_tokens] row of block_tables for each token;
                                          // -1 = padding: skipped, its out rows untouched
  const int32_t* token_pos = nullptr;     // [n_tokens] position; attends to positions [0, pos]
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]; -1 = no block
  int64_t n_tokens = 0;
  int max_blocks_per_seq = 0;
  int n_heads = 0;
  int n_kv_heads = 0;       // REQUIRES: n_heads % n_kv_heads == 0 (GQA)
  int head_dim = 0;
  int block_size = 0;
  float scale = 1.0f;       // usually 1/sqrt(head_dim)
  // KV heads [kv_head_begin, kv_head_end) are computed (with their query-head groups); the
  // default is all. Lets a caller split one token's heads across threads.
  int kv_head_begin = 0;
  int kv_head_end = -1;     // -1 = n_kv_heads
};

namespace ref {
// REQUIRES: the K/V of every attended position was written before the call.
void KvWrite(const KvWriteArgs& args);
// Per (token, head): softmax(q.K^T * scale) V over positions [0, token_pos], accumulated in
// float with a running max. Tokens are independent, so callers may split args by token range.
void PagedAttention(const PagedAttentionArgs& args);
}  // namespace ref

}  // namespace troupe
