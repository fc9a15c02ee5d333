// How one step's tokens map onto the CUDA backend's attention kernels: the host-side planning
// (no CUDA here, so it is unit-tested on any machine).
//
// A sequence with one new token becomes a *decode item* (row, sequence, keys); a run of
// consecutive tokens of one sequence becomes *prefill tiles* of up to `tile_rows` rows. Each
// sequence's block list is given in CSR form, up to the page of its last position this step.
// Decode steps that a CUDA graph can replay are padded to a bucket of batch sizes.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend/backend.h"

namespace troupe {

struct AttentionPlan {
  std::vector<int32_t> kv_indptr;   // [n_seqs + 1]: sequence s's blocks are
  std::vector<int32_t> kv_indices;  //   kv_indices[kv_indptr[s], kv_indptr[s + 1])
  std::vector<int32_t> item_row;    // [items] token row of each decode item
  std::vector<int32_t> item_seq;    // [items] its sequence (block-table row)
  std::vector<int32_t> item_len;    // [items] keys it attends to: position + 1
  std::vector<int32_t> tiles;       // [tiles, 4]: sequence, first row, rows, first position

  int num_items() const { return static_cast<int>(item_row.size()); }
  int num_tiles() const { return static_cast<int>(tiles.size() / 4); }
  int max_item_len() const;
};

// Fills `plan` from `batch` (its vectors are reused). tile_rows = 0: no tiles, every token is a
// decode item (head dims the prefill kernel does not cover). Tokens with token_seq -1 (padding)
// get no attention work. Runs of a sequence whose positions are not consecutive become items.
void BuildAttentionPlan(const ForwardBatch& batch, int block_size, int tile_rows,
                        AttentionPlan& plan);

// Decode steps replay a CUDA graph per bucket of batch sizes (vLLM's): 1, 2, 4, then multiples
// of 8 up to kMaxGraphBatch.
constexpr int kMaxGraphBatch = 256;
int GraphBucket(int n);

// The key count a graph step's decode split count is chosen for (ChooseNumSplits): the step's
// longest context rounded up to a power of two, at most `max_seq_len` (the model's limit). A
// short context then gets few splits, where the limit would force the most, and a bucket needs
// graphs for only a handful of split counts (one per power of two). REQUIRES: max_seq_len >= 1.
int GraphSplitKeys(int max_item_len, int max_seq_len);

// A step a decode graph can replay: one token per sequence, every token sampled in order, no
// hidden states asked for, at most kMaxGraphBatch tokens.
bool IsGraphStep(const ForwardBatch& batch);

// The inputs of a graph step padded to `bucket` items. Item i is token i and reads its own CSR
// start, kv_indptr[i] (the kernel reads only starts), whatever block-table row its sequence is;
// padding items attend to nothing (len 0), write no KV (slot -1) and sample row i.
struct GraphItems {
  std::vector<int32_t> tokens, positions, logit_rows, item_row, item_seq, item_len;
  std::vector<int64_t> slots;
  std::vector<int32_t> kv_indptr;  // [bucket + 1]
};
// REQUIRES: IsGraphStep(batch), plan built from batch, batch size <= bucket.
void PadGraphItems(const ForwardBatch& batch, const AttentionPlan& plan, int bucket,
                   GraphItems& out);

}  // namespace troupe
