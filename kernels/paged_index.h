// Paged-KV index arithmetic shared by the CPU code and the CUDA kernels (TROUPE_HD): where a
// position's K/V lives, and how decode attention splits a sequence into chunks (split-KV,
// "flash-decoding") whose partial results kernels/softmax_merge.h combines.
//
// Layout (kernels/paged_attention.h): one layer's cache is [num_blocks, block_size, n_kv_heads,
// head_dim]; position p of a sequence is at offset p % block_size of block table[p / block_size].
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace troupe {

TROUPE_HD int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// The cache slot (block * block_size + offset) of position `pos`, or -1 when its table entry is
// -1 (no block). REQUIRES: 0 <= pos < max_blocks * block_size of `table`.
TROUPE_HD int64_t PagedSlot(const int32_t* table, int pos, int block_size) {
  const int32_t block = table[pos / block_size];
  if (block < 0) return -1;
  return static_cast<int64_t>(block) * block_size + pos % block_size;
}

// Element offset of (slot, kv head) in a [slots, n_kv_heads, head_dim] cache.
TROUPE_HD int64_t KvRowOffset(int64_t slot, int kv_head, int n_kv_heads, int head_dim) {
  return (slot * n_kv_heads + kv_head) * static_cast<int64_t>(head_dim);
}

// Keys [begin, end) of chunk `split` when a sequence of `seq_len` keys is cut into
// `num_splits` chunks of equal size rounded up to whole blocks (so a chunk never shares a block
// with its neighbour). Trailing chunks may be empty (begin >= end) when the sequence is short.
struct KeyRange {
  int begin = 0;
  int end = 0;
};
TROUPE_HD KeyRange SplitKeyRange(int seq_len, int num_splits, int split, int block_size) {
  const int chunk = CeilDiv(CeilDiv(seq_len, num_splits), block_size) * block_size;
  KeyRange r;
  r.begin = split * chunk;
  r.end = r.begin + chunk < seq_len ? r.begin + chunk : seq_len;
  if (r.begin > seq_len) r.begin = seq_len;
  return r;
}

// Splits per sequence for a decode batch. The grid has n_seqs * n_kv_heads * splits blocks and
// one wave is `num_sms * blocks_per_sm` of them (blocks_per_sm: what
// cudaOccupancyMaxActiveBlocksPerMultiprocessor reports for the split kernel). A grid of B
// blocks runs ceil(B / wave) waves, the last one partial, so its efficiency is
// B / (waves * wave). Candidates are 1 .. min(max_splits, ceil(max_seq_len / min_chunk_keys))
// (no chunk under min_chunk_keys at the longest sequence: short contexts get few splits); the
// answer is the fewest splits whose efficiency is within 10 % of the best candidate's.
// Depends only on its arguments, so a CUDA graph captured for them can fix it.
TROUPE_HD int ChooseNumSplits(int n_seqs, int n_kv_heads, int max_seq_len, int num_sms,
                              int blocks_per_sm, int min_chunk_keys, int max_splits) {
  const int64_t items = int64_t{n_seqs} * n_kv_heads;
  const int64_t wave = int64_t{num_sms} * blocks_per_sm;
  if (items <= 0 || wave <= 0) return 1;
  int limit = CeilDiv(max_seq_len, min_chunk_keys);
  if (limit > max_splits) limit = max_splits;
  if (limit < 1) limit = 1;
  // Efficiencies compared as fractions blocks / (waves * wave); the wave cancels.
  int64_t best_blocks = 0, best_waves = 1;
  for (int s = 1; s <= limit; ++s) {
    const int64_t blocks = items * s, waves = (blocks + wave - 1) / wave;
    if (blocks * best_waves > best_blocks * waves) {
      best_blocks = blocks;
      best_waves = waves;
    }
  }
  for (int s = 1; s <= limit; ++s) {
    const int64_t blocks = items * s, waves = (blocks + wave - 1) / wave;
    if (10 * blocks * best_waves >= 9 * best_blocks * waves) return s;
  }
  return limit;  // not reached: the best candidate qualifies
}

}  // namespace troupe
