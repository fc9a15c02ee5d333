// Paged decode attention on the GPU: one query token per work item attends to keys [0, len) of
// its sequence through the paged KV cache. Its reference is ref::PagedAttention
// (kernels/paged_attention.h) over the same cache contents in f32.
//
// Design (docs/kernels.md): a CUDA block per (item, kv head, split), so each K/V row is loaded
// once for all query heads of its GQA group, by 16-byte cp.async copies (head_dim / 8 lanes per
// row) through a multi-stage shared-memory pipeline; split-KV cuts long sequences into
// `num_splits` block-aligned chunks (kernels/paged_index.h SplitKeyRange) whose partial
// (o, lse) a merge kernel combines (kernels/softmax_merge.h). Every per-step input lives in
// device memory, so a CUDA graph can replay a launch with new contents.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

namespace troupe::cuda {

// Block lists in CSR form (as FlashInfer's kv_indptr / kv_indices): sequence s's blocks are
// kv_indices[kv_indptr[s], kv_indptr[s + 1]), in position order.
struct PagedKv {
  const Bf16* k_cache = nullptr;     // [num_slots, n_kv_heads, head_dim] (slot = block*bs + off)
  const Bf16* v_cache = nullptr;
  const int32_t* kv_indptr = nullptr;   // [n_seqs + 1]
  const int32_t* kv_indices = nullptr;  // [kv_indptr[n_seqs]]
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
};

struct DecodeAttentionArgs {
  PagedKv kv;
  const Bf16* q = nullptr;           // [n_rows, n_heads, head_dim]
  Bf16* out = nullptr;               // [n_rows, n_heads, head_dim]
  const int32_t* item_row = nullptr; // [n_items] row of q / out
  const int32_t* item_seq = nullptr; // [n_items] sequence (index into kv_indptr)
  const int32_t* item_len = nullptr; // [n_items] keys attended: positions [0, len); 0 = none
                                     // (out row written as zeros)
  int n_items = 0;
  int n_heads = 0;
  float scale = 1.0f;
  int num_splits = 1;                // >= 1; > 1 needs the workspace below
  float* partial_out = nullptr;      // [n_items, n_heads, num_splits, head_dim]
  float* partial_lse = nullptr;      // [n_items, n_heads, num_splits]
};

// Head dims the kernels are built for.
bool DecodeAttentionSupports(int head_dim, int group);

// Split-kernel blocks for `head_dim` that one multiprocessor holds at once, as
// cudaOccupancyMaxActiveBlocksPerMultiprocessor reports for the built kernel (registers and
// shared memory included); 0 for an unsupported head_dim. Synchronous; call once and keep it.
int DecodeAttentionBlocksPerSm(int head_dim);

// Launches the split kernel and, when num_splits > 1, the merge. Asynchronous on `stream`.
// REQUIRES: DecodeAttentionSupports(head_dim, n_heads / n_kv_heads); every attended position's
// block is listed and written.
void DecodeAttention(const DecodeAttentionArgs& args, Stream stream);

}  // namespace troupe::cuda
