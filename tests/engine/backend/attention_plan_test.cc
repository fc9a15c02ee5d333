// The CUDA backend's host-side attention planning (engine/backend/attention_plan.h): decode
// items, prefill tiles, CSR block lists, and the padding of graph steps. Runs on any machine.
#include "engine/backend/attention_plan.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/paged_index.h"

namespace troupe {
namespace {

// A batch built sequence by sequence; block b of sequence s is 100 * s + b.
struct Batch {
  std::vector<int32_t> tokens, positions, token_seq, block_tables, logit_rows;
  std::vector<int64_t> slots;
  int n_seqs = 0, max_blocks = 16;
  float hidden = 0;
  bool want_hidden = false;

  explicit Batch(int seqs) : n_seqs(seqs) {
    for (int s = 0; s < seqs; ++s) {
      for (int b = 0; b < max_blocks; ++b) block_tables.push_back(100 * s + b);
    }
  }
  // Tokens at positions [start, start + count) of sequence s (-1: padding rows).
  void Add(int s, int start, int count, bool sample = true) {
    for (int i = 0; i < count; ++i) {
      tokens.push_back(7);
      positions.push_back(start + i);
      token_seq.push_back(s);
      slots.push_back(s < 0 ? -1 : int64_t{100 * s + (start + i) / 16} * 16 + (start + i) % 16);
    }
    if (sample) logit_rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
  }
  ForwardBatch Get() const {
    ForwardBatch b;
    b.tokens = tokens;
    b.positions = positions;
    b.token_seq = token_seq;
    b.slots = slots;
    b.block_tables = block_tables;
    b.n_seqs = n_seqs;
    b.max_blocks_per_seq = max_blocks;
    b.logit_rows = logit_rows;
    if (want_hidden) b.hidden_out = const_cast<float*>(&hidden);
    return b;
  }
};

TEST(AttentionPlanTest, PrefillRunsBecomeTilesAndSingleTokensBecomeItems) {
  Batch b(3);
  b.Add(0, 10, 150);  // a chunk after 10 cached tokens: tiles of 64, 64, 22
  b.Add(1, 17, 1);    // a decode: keys 0..17
  b.Add(-1, 0, 2, /*sample=*/false);  // padding rows: no work
  b.Add(2, 0, 1);     // a one-token prompt is a decode item too
  AttentionPlan plan;
  BuildAttentionPlan(b.Get(), 16, 64, plan);
  EXPECT_EQ(plan.tiles, (std::vector<int32_t>{0, 0, 64, 10, 0, 64, 64, 74, 0, 128, 22, 138}));
  EXPECT_EQ(plan.item_row, (std::vector<int32_t>{150, 153}));
  EXPECT_EQ(plan.item_seq, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(plan.item_len, (std::vector<int32_t>{18, 1}));
  EXPECT_EQ(plan.max_item_len(), 18);
  // Pages up to each sequence's last position: 160 -> 11 blocks, 18 -> 2, 1 -> 1.
  EXPECT_EQ(plan.kv_indptr, (std::vector<int32_t>{0, 10, 12, 13}));
  // 159 / 16 = 9: blocks 0..9 of sequence 0.
  EXPECT_EQ(plan.kv_indptr[1], 10);
  EXPECT_EQ(std::vector<int32_t>(plan.kv_indices.begin(), plan.kv_indices.begin() + 10),
            (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(std::vector<int32_t>(plan.kv_indices.begin() + 10, plan.kv_indices.end()),
            (std::vector<int32_t>{100, 101, 200}));
}

TEST(AttentionPlanTest, WithoutTilesEveryTokenIsAnItem) {
  Batch b(1);
  b.Add(0, 5, 3);
  AttentionPlan plan;
  BuildAttentionPlan(b.Get(), 16, /*tile_rows=*/0, plan);
  EXPECT_EQ(plan.num_tiles(), 0);
  EXPECT_EQ(plan.item_row, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(plan.item_len, (std::vector<int32_t>{6, 7, 8}));
}

TEST(AttentionPlanTest, NonConsecutivePositionsBecomeItems) {
  Batch b(1);
  b.Add(0, 0, 2);
  b.positions[1] = 5;  // not position 1
  AttentionPlan plan;
  BuildAttentionPlan(b.Get(), 16, 64, plan);
  EXPECT_EQ(plan.num_tiles(), 0);
  EXPECT_EQ(plan.item_len, (std::vector<int32_t>{1, 6}));
}

TEST(AttentionPlanTest, GraphBucketsFollowVllm) {
  EXPECT_EQ(GraphBucket(1), 1);
  EXPECT_EQ(GraphBucket(2), 2);
  EXPECT_EQ(GraphBucket(3), 4);
  EXPECT_EQ(GraphBucket(4), 4);
  EXPECT_EQ(GraphBucket(5), 8);
  EXPECT_EQ(GraphBucket(9), 16);
  EXPECT_EQ(GraphBucket(256), 256);
}

TEST(AttentionPlanTest, GraphSplitKeysRoundTheLongestContextUpToAPowerOfTwo) {
  EXPECT_EQ(GraphSplitKeys(0, 4096), 1);
  EXPECT_EQ(GraphSplitKeys(1, 4096), 1);
  EXPECT_EQ(GraphSplitKeys(300, 4096), 512);
  EXPECT_EQ(GraphSplitKeys(512, 4096), 512);
  EXPECT_EQ(GraphSplitKeys(3000, 4096), 4096);
  EXPECT_EQ(GraphSplitKeys(3000, 2000), 2000);  // never past the model's limit
}

// One sequence (8 kv heads) on 132 SMs x 4 blocks: at a 32k context limit a graph fixed for the
// limit would run 29 splits at every step; from the step's own context a short one runs few.
TEST(AttentionPlanTest, ShortGraphStepsGetFewSplits) {
  const auto splits = [](int max_item_len) {
    return ChooseNumSplits(/*n_seqs=*/1, /*n_kv_heads=*/8, GraphSplitKeys(max_item_len, 32768),
                           /*num_sms=*/132, /*blocks_per_sm=*/4, /*min_chunk_keys=*/256,
                           /*max_splits=*/32);
  };
  EXPECT_EQ(splits(32768), 29);
  EXPECT_EQ(splits(100), 1);
  EXPECT_EQ(splits(300), 2);
  EXPECT_EQ(splits(1000), 4);
  // Distinct split counts a bucket can need: one per power of two of the context.
  std::vector<int> seen;
  for (int len = 1; len <= 32768; ++len) {
    if (seen.empty() || seen.back() != splits(len)) seen.push_back(splits(len));
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 4, 8, 15, 29}));
}

TEST(AttentionPlanTest, OnlyPureDecodeStepsReplayGraphs) {
  Batch decode(3);
  for (int s = 0; s < 3; ++s) decode.Add(s, 20 + s, 1);
  EXPECT_TRUE(IsGraphStep(decode.Get()));

  Batch prefill(2);
  prefill.Add(0, 0, 2);
  prefill.Add(1, 4, 1);
  EXPECT_FALSE(IsGraphStep(prefill.Get()));  // two tokens of one sequence

  Batch hidden = decode;
  hidden.want_hidden = true;
  EXPECT_FALSE(IsGraphStep(hidden.Get()));  // embed-only rows want hidden states

  Batch unsampled(2);
  unsampled.Add(0, 3, 1, /*sample=*/false);
  unsampled.Add(1, 3, 1);
  EXPECT_FALSE(IsGraphStep(unsampled.Get()));  // logit rows are not every token in order

  Batch big(kMaxGraphBatch + 1);
  for (int s = 0; s <= kMaxGraphBatch; ++s) big.Add(s, 0, 1);
  EXPECT_FALSE(IsGraphStep(big.Get()));
  EXPECT_FALSE(IsGraphStep(Batch(1).Get()));  // empty
}

TEST(AttentionPlanTest, GraphItemsReadTheirOwnSequencesCsrStartAndPadToTheBucket) {
  // Three decodes whose sequences are block-table rows 2, 0 and 4 of five (rows 1 and 3 idle).
  Batch b(5);
  b.Add(2, 40, 1);
  b.Add(0, 3, 1);
  b.Add(4, 17, 1);
  AttentionPlan plan;
  BuildAttentionPlan(b.Get(), 16, 64, plan);
  ASSERT_TRUE(IsGraphStep(b.Get()));
  GraphItems g;
  PadGraphItems(b.Get(), plan, GraphBucket(3), g);
  ASSERT_EQ(g.item_seq.size(), 4u);
  // CSR of the plan: seq 0 -> 1 page, seq 2 -> 3 pages, seq 4 -> 2 pages.
  EXPECT_EQ(plan.kv_indptr, (std::vector<int32_t>{0, 1, 1, 4, 4, 6}));
  EXPECT_EQ(g.item_seq, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(g.kv_indptr, (std::vector<int32_t>{1, 0, 4, 0, 6}));
  EXPECT_EQ(plan.kv_indices[g.kv_indptr[0]], 200);  // item 0 reads sequence 2's first block
  EXPECT_EQ(plan.kv_indices[g.kv_indptr[2]], 400);
  EXPECT_EQ(g.item_len, (std::vector<int32_t>{41, 4, 18, 0}));
  EXPECT_EQ(g.slots[3], -1);
  EXPECT_EQ(g.tokens[3], 0);
  EXPECT_EQ(g.logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(g.item_row, (std::vector<int32_t>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace troupe
