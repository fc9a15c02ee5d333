// Paged KV cache write and causal attention that reads K/V through per-sequence block tables.
// One layer's cache is [num_blocks, block_size, n_kv_heads, head_dim] elements of the cache
// type for K and for V; token t of a sequence lives in block block_table[t / block_size] at
// offset t % block_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace troupe {

// Element type of the KV cache. kF16 halves its memory; its attention follows the arithmetic
// of llama.cpp's CPU flash attention (queries rounded to f16, the running sum of p * V rounded
// to f16 after every key), so troupe's outputs can be compared with llama.cpp's defaults.
enum class KvCacheType { kF32, kF16 };

inline size_t KvElementBytes(KvCacheType type) { return type == KvCacheType::kF16 ? 2 : 4; }
inline std::string_view KvCacheTypeName(KvCacheType type) {
  return type == KvCacheType::kF16 ? "f16" : "f32";
}
inline std::optional<KvCacheType> KvCacheTypeFromName(std::string_view name) {
  if (name == "f16") return KvCacheType::kF16;
  if (name == "f32") return KvCacheType::kF32;
  return std::nullopt;
}

struct KvWriteArgs {
  const float* k = nullptr;      // [n_tokens, n_kv_heads * head_dim]
  const float* v = nullptr;      // [n_tokens, n_kv_heads * head_dim]
  void* k_cache = nullptr;       // [num_blocks, block_size, n_kv_heads * head_dim] of cache_type
  void* v_cache = nullptr;       // same shape
  KvCacheType cache_type = KvCacheType::kF32;
  const int64_t* slots = nullptr;  // [n_tokens]: block_id * block_size + offset; -1 = skip
  int64_t n_tokens = 0;
  int kv_dim = 0;                // n_kv_heads * head_dim
};

struct PagedAttentionArgs {
  const float* q = nullptr;        // [n_tokens, n_heads, head_dim]
  const void* k_cache = nullptr;   // [num_blocks, block_size, n_kv_heads, head_dim] of cache_type
  const void* v_cache = nullptr;   // same
  KvCacheType cache_type = KvCacheType::kF32;
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
// Stores each token's K/V row at its slot, converted to the cache type (f16: nearest even).
void KvWrite(const KvWriteArgs& args);
// Per (token, head): softmax(q.K^T * scale) V over positions [0, token_pos] with a running max:
// in f32 for an f32 cache, in llama.cpp's flash-attention arithmetic for an f16 cache (see
// KvCacheType). Tokens are independent, so callers may split args by token range.
// REQUIRES: the K/V of every attended position was written before the call.
void PagedAttention(const PagedAttentionArgs& args);
}  // namespace ref

}  // namespace troupe
