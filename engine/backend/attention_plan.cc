// Host-side planning of the CUDA attention work (attention_plan.h).
#include "engine/backend/attention_plan.h"

#include <algorithm>

#include "common/check.h"
#include "kernels/paged_index.h"

namespace troupe {

int AttentionPlan::max_item_len() const {
  int m = 0;
  for (int32_t len : item_len) m = std::max(m, len);
  return m;
}

void BuildAttentionPlan(const ForwardBatch& batch, int block_size, int tile_rows,
                        AttentionPlan& plan) {
  const int n = static_cast<int>(batch.tokens.size());
  plan.kv_indptr.assign(batch.n_seqs + 1, 0);
  plan.kv_indices.clear();
  plan.item_row.clear();
  plan.item_seq.clear();
  plan.item_len.clear();
  plan.tiles.clear();
  // Pages each sequence needs: up to its last position in this step.
  std::vector<int32_t> pages(batch.n_seqs, 0);
  for (int t = 0; t < n; ++t) {
    const int s = batch.token_seq[t];
    if (s >= 0) pages[s] = std::max(pages[s], CeilDiv(batch.positions[t] + 1, block_size));
  }
  for (int s = 0; s < batch.n_seqs; ++s) {
    TROUPE_CHECK_MSG(pages[s] <= batch.max_blocks_per_seq,
                     "sequence %d reaches block %d of a %d-block table", s, pages[s],
                     batch.max_blocks_per_seq);
    plan.kv_indptr[s + 1] = plan.kv_indptr[s] + pages[s];
    const int32_t* row =
        batch.block_tables.data() + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
    plan.kv_indices.insert(plan.kv_indices.end(), row, row + pages[s]);
  }
  for (int t = 0; t < n;) {
    const int s = batch.token_seq[t];
    int end = t + 1;
    while (end < n && batch.token_seq[end] == s) ++end;
    if (s >= 0) {
      bool consecutive = true;
      for (int u = t + 1; u < end; ++u) {
        consecutive &= batch.positions[u] == batch.positions[u - 1] + 1;
      }
      if (end - t > 1 && consecutive && tile_rows > 0) {
        for (int r = t; r < end; r += tile_rows) {
          const int rows = std::min(tile_rows, end - r);
          plan.tiles.insert(plan.tiles.end(), {s, r, rows, batch.positions[r]});
        }
      } else {
        for (int u = t; u < end; ++u) {
          plan.item_row.push_back(u);
          plan.item_seq.push_back(s);
          plan.item_len.push_back(batch.positions[u] + 1);
        }
      }
    }
    t = end;
  }
}

int GraphBucket(int n) {
  if (n <= 2) return n;
  if (n <= 4) return 4;
  return (n + 7) / 8 * 8;
}

int GraphSplitKeys(int max_item_len, int max_seq_len) {
  int keys = 1;
  while (keys < max_item_len && keys < max_seq_len) keys *= 2;
  return std::min(keys, max_seq_len);
}

bool IsGraphStep(const ForwardBatch& batch) {
  const size_t n = batch.tokens.size();
  if (n == 0 || n > static_cast<size_t>(kMaxGraphBatch) || batch.hidden_out != nullptr) {
    return false;
  }
  if (batch.logit_rows.size() != n) return false;
  for (size_t t = 0; t < n; ++t) {
    if (batch.logit_rows[t] != static_cast<int32_t>(t) || batch.token_seq[t] < 0) return false;
    if (t > 0 && batch.token_seq[t] == batch.token_seq[t - 1]) return false;
  }
  return true;
}

void PadGraphItems(const ForwardBatch& batch, const AttentionPlan& plan, int bucket,
                   GraphItems& out) {
  const int n = static_cast<int>(batch.tokens.size());
  TROUPE_CHECK(n <= bucket && plan.num_items() == n && plan.num_tiles() == 0);
  out.tokens.assign(bucket, 0);
  out.positions.assign(bucket, 0);
  out.slots.assign(bucket, -1);
  out.logit_rows.resize(bucket);
  out.item_row.resize(bucket);
  out.item_seq.resize(bucket);
  out.item_len.assign(bucket, 0);
  out.kv_indptr.assign(bucket + 1, 0);
  for (int i = 0; i < bucket; ++i) {
    out.logit_rows[i] = i;
    out.item_row[i] = i;
    out.item_seq[i] = i;
    if (i >= n) continue;
    out.tokens[i] = batch.tokens[i];
    out.positions[i] = batch.positions[i];
    out.slots[i] = batch.slots[i];
    out.item_len[i] = plan.item_len[i];
    out.kv_indptr[i] = plan.kv_indptr[batch.token_seq[i]];
  }
  out.kv_indptr[bucket] = plan.kv_indptr[batch.n_seqs];
}

}  // namespace troupe
