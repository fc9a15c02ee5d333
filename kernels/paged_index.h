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

// Splits per sequence for a decode batch: enough (sequence, kv head, split) work items to give
// each of `num_sms` multiprocessors `blocks_per_sm` of them, but no chunk shorter than
// `min_chunk_keys` at the longest sequence and never more than `max_splits`. Depends only on
// the batch shape, so a CUDA graph captured for a batch size can fix it.
TROUPE_HD int ChooseNumSplits(int n_seqs, int n_kv_heads, int max_seq_len, int num_sms,
                              int blocks_per_sm, int min_chunk_keys, int max_splits) {
  const int items = n_seqs * n_kv_heads;
  if (items <= 0) return 1;
  int splits = CeilDiv(num_sms * blocks_per_sm, items);
  const int by_length = CeilDiv(max_seq_len, min_chunk_keys);
  if (splits > by_length) splits = by_length;
  if (splits > max_splits) splits = max_splits;
  return splits < 1 ? 1 : splits;
}

}  // namespace troupe
