// cuda::DecodeAttention against ref::PagedAttention over the same (bf16-valued) cache: head dims
// 8 / 64 / 128, GQA groups 1 / 3 / 4 / 8, ragged lengths around the page size and up to ~5000,
// shuffled non-contiguous pages with NaN in every unwritten slot, padding items (len 0 -> zero
// rows), rows no item names (left untouched), and split counts 1 / middle / auto / 32. Also:
// the same outputs whatever the split count, and the splits' log-sum-exp merges to the true one.
// The kernel's pipeline boundaries: lengths around its tile (32 keys at head dim 32-128, 64 at
// 16, 128 at 8), shorter than a tile, thousands of tiles, pages of 1-8 keys so that a tile
// spans many scattered pages and the staged page window (256 ids) is refilled.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/decode_attention.h"
#include "kernels/ggml_types.h"
#include "kernels/paged_attention.h"
#include "kernels/paged_index.h"
#include "kernels/softmax_merge.h"
#include "tests/testing/cuda_testing.h"
#include "tests/testing/paged_kv_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

constexpr int kBlockSize = 16;
constexpr int kNumKvHeads = 2;

// Sequences: ragged around the page size, long, and one ~5000.
const std::vector<int> kSeqLens = {1, 15, 16, 17, 1000, 1024, 1025, 5003, 33, 300, 7};

// One decode batch over a random cache; Run() launches with a given split count.
class DecodeBatch {
 public:
  // rising: scores grow with position (testing::MakeScoresRiseWithPosition), so the result
  // pins down exactly which keys were attended.
  // Items: one per sequence at its full length, then (with the default kSeqLens) a shorter look
  // at the long sequence (its later positions are written but must not be attended), and a
  // padding item (len 0).
  DecodeBatch(int head_dim, int group, uint32_t seed, bool rising = false,
              const std::vector<int>& seq_lens = kSeqLens, int block_size = kBlockSize)
      : head_dim_(head_dim), group_(group), block_size_(block_size) {
    n_heads_ = kNumKvHeads * group;
    scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim));
    std::mt19937 rng(seed);
    kv_ =
        testing::MakePagedKv(seq_lens, block_size, kNumKvHeads, head_dim, /*spare_blocks=*/37, rng);
    if (rising) testing::MakeScoresRiseWithPosition(kv_);
    for (int s = 0; s < kv_.n_seqs(); ++s) {
      item_seq_.push_back(s);
      item_len_.push_back(seq_lens[s]);
    }
    if (seq_lens == kSeqLens) {
      item_seq_.push_back(7);
      item_len_.push_back(2001);
    }
    item_seq_.push_back(kv_.n_seqs() > 3 ? 3 : 0);
    item_len_.push_back(0);
    const int n_items = static_cast<int>(item_seq_.size());
    // Rows: items scattered over more rows than items, in shuffled order; the rest are unnamed.
    n_rows_ = n_items + 3;
    std::vector<int32_t> rows(n_rows_);
    std::iota(rows.begin(), rows.end(), 0);
    std::shuffle(rows.begin(), rows.end(), rng);
    item_row_.assign(rows.begin(), rows.begin() + n_items);

    std::normal_distribution<float> normal(0.0f, 2.0f);  // scores with a std of ~2
    q_.resize(static_cast<size_t>(n_rows_) * n_heads_ * head_dim);
    for (Bf16& x : q_) x = Fp32ToBf16(normal(rng));
    if (rising) {
      const std::vector<float> head_q = testing::RisingQuery(head_dim);
      for (size_t i = 0; i < q_.size(); ++i) q_[i] = Fp32ToBf16(head_q[i % head_dim]);
    }
    ComputeReference();

    d_kv_ = std::make_unique<testing::PagedKvDevice>(kv_);
    d_q_ = DeviceBuffer<Bf16>(q_);
    d_out_ = DeviceBuffer<Bf16>(q_.size());
    d_item_row_ = DeviceBuffer<int32_t>(item_row_);
    d_item_seq_ = DeviceBuffer<int32_t>(item_seq_);
    d_item_len_ = DeviceBuffer<int32_t>(item_len_);
  }

  int n_items() const { return static_cast<int>(item_seq_.size()); }
  int max_len() const { return *std::max_element(item_len_.begin(), item_len_.end()); }

  // Launches with `num_splits` on poisoned outputs and workspace; returns out [n_rows, n_heads,
  // head_dim]; *lse gets the partial lse [n_items, n_heads, num_splits] when num_splits > 1.
  std::vector<float> Run(int num_splits, std::vector<float>* lse = nullptr) {
    const size_t parts = static_cast<size_t>(n_items()) * n_heads_ * num_splits;
    DeviceBuffer<float> partial_out(num_splits > 1 ? parts * head_dim_ : 0);
    DeviceBuffer<float> partial_lse(num_splits > 1 ? parts : 0);
    testing::PoisonNaN(partial_out);
    testing::PoisonNaN(partial_lse);
    testing::PoisonNaN(d_out_);
    cuda::DecodeAttention({.kv = d_kv_->view(),
                           .q = d_q_.get(),
                           .out = d_out_.get(),
                           .item_row = d_item_row_.get(),
                           .item_seq = d_item_seq_.get(),
                           .item_len = d_item_len_.get(),
                           .n_items = n_items(),
                           .n_heads = n_heads_,
                           .scale = scale_,
                           .num_splits = num_splits,
                           .partial_out = partial_out.get(),
                           .partial_lse = partial_lse.get()},
                          nullptr);
    const std::vector<Bf16> out = d_out_.Download();
    if (lse != nullptr) *lse = partial_lse.Download();
    raw_out_ = out;
    return testing::ToFloat(out);
  }

  // The rows of the items, in item order, out of `out` [n_rows, n_heads, head_dim].
  std::vector<float> ItemRows(const std::vector<float>& out) const {
    const size_t row_elems = static_cast<size_t>(n_heads_) * head_dim_;
    std::vector<float> rows;
    for (int32_t r : item_row_) {
      rows.insert(rows.end(), out.begin() + r * row_elems, out.begin() + (r + 1) * row_elems);
    }
    return rows;
  }

  // Every item's rows against the reference; len-0 items are zeros; unnamed rows untouched.
  void ExpectMatchesReference(const std::vector<float>& got) const {
    const size_t row_elems = static_cast<size_t>(n_heads_) * head_dim_;
    for (int i = 0; i < n_items(); ++i) {
      SCOPED_TRACE("item " + std::to_string(i) + " len " + std::to_string(item_len_[i]));
      const std::vector<float> got_row(got.begin() + item_row_[i] * row_elems,
                                       got.begin() + (item_row_[i] + 1) * row_elems);
      if (item_len_[i] == 0) {
        EXPECT_TRUE(testing::AllClose(got_row, std::vector<float>(row_elems, 0.0f), 0.0, 0.0));
        continue;
      }
      const std::vector<float> want_row(want_.begin() + i * row_elems,
                                        want_.begin() + (i + 1) * row_elems);
      EXPECT_LE(testing::RelativeL2(got_row, want_row), 5e-3);
      // f32 arithmetic in another order, then one bf16 rounding.
      EXPECT_TRUE(testing::WithinBf16Ulps(got_row, want_row, 2.0f, 1e-4));
    }
    std::vector<bool> named(n_rows_, false);
    for (int32_t r : item_row_) named[r] = true;
    for (int r = 0; r < n_rows_; ++r) {
      if (named[r]) continue;
      for (size_t e = 0; e < row_elems; ++e) {
        ASSERT_EQ(raw_out_[r * row_elems + e], testing::kPoisonBf16Bits)
            << "unnamed row " << r << " element " << e << " was written";
      }
    }
  }

  // The splits' lse, merged, against the log-sum-exp of the scores in double.
  void ExpectLseMatches(const std::vector<float>& partial_lse, int num_splits) const {
    for (int i = 0; i < n_items(); ++i) {
      for (int h = 0; h < n_heads_; ++h) {
        float merged = -INFINITY;
        for (int s = 0; s < num_splits; ++s) {
          const float part = partial_lse[(static_cast<size_t>(i) * n_heads_ + h) * num_splits + s];
          ASSERT_FALSE(std::isnan(part)) << "item " << i << " head " << h << " split " << s;
          merged = LseAdd(merged, part);
        }
        std::vector<float> q(head_dim_);
        for (int d = 0; d < head_dim_; ++d) {
          q[d] = Bf16ToFp32(q_[(static_cast<size_t>(item_row_[i]) * n_heads_ + h) * head_dim_ + d]);
        }
        const double want =
            testing::ReferenceLse(kv_, q.data(), h, n_heads_, item_seq_[i], item_len_[i], scale_);
        if (item_len_[i] == 0) {
          EXPECT_EQ(merged, -INFINITY) << "item " << i << " head " << h;
        } else {
          EXPECT_NEAR(merged, want, 1e-4 * std::max(1.0, std::fabs(want)))
              << "item " << i << " head " << h;
        }
      }
    }
  }

 private:
  // want_ [n_items, n_heads, head_dim] from ref::PagedAttention on the f32 copy of the cache.
  void ComputeReference() {
    const int n = n_items();
    std::vector<float> q_ref(static_cast<size_t>(n) * n_heads_ * head_dim_);
    const size_t row_elems = static_cast<size_t>(n_heads_) * head_dim_;
    std::vector<int32_t> token_seq(n), token_pos(n);
    for (int i = 0; i < n; ++i) {
      for (size_t e = 0; e < row_elems; ++e) {
        q_ref[i * row_elems + e] = Bf16ToFp32(q_[item_row_[i] * row_elems + e]);
      }
      token_seq[i] = item_len_[i] > 0 ? item_seq_[i] : -1;  // padding: skipped by the reference
      token_pos[i] = item_len_[i] - 1;
    }
    want_.assign(q_ref.size(), 0.0f);
    ref::PagedAttention({.q = q_ref.data(),
                         .k_cache = kv_.k_f32.data(),
                         .v_cache = kv_.v_f32.data(),
                         .cache_type = KvCacheType::kF32,
                         .out = want_.data(),
                         .token_seq = token_seq.data(),
                         .token_pos = token_pos.data(),
                         .block_tables = kv_.block_tables.data(),
                         .n_tokens = n,
                         .max_blocks_per_seq = kv_.max_blocks,
                         .n_heads = n_heads_,
                         .n_kv_heads = kNumKvHeads,
                         .head_dim = head_dim_,
                         .block_size = block_size_,
                         .scale = scale_});
  }

  int head_dim_, group_, block_size_, n_heads_ = 0, n_rows_ = 0;
  float scale_ = 1.0f;
  testing::PagedKvHost kv_;
  std::vector<int32_t> item_row_, item_seq_, item_len_;
  std::vector<Bf16> q_;
  std::vector<float> want_;
  std::vector<Bf16> raw_out_;
  std::unique_ptr<testing::PagedKvDevice> d_kv_;
  DeviceBuffer<Bf16> d_q_, d_out_;
  DeviceBuffer<int32_t> d_item_row_, d_item_seq_, d_item_len_;
};

struct DecodeShape {
  int head_dim;
  int group;
};
constexpr DecodeShape kShapes[] = {{64, 1},  {64, 4},  {64, 8}, {128, 1},
                                   {128, 4}, {128, 8}, {8, 3},  {128, 3}};

std::string Describe(const DecodeShape& s) {
  return "head_dim=" + std::to_string(s.head_dim) + " group=" + std::to_string(s.group);
}

TEST(DecodeAttentionCudaTest, MatchesReferenceForEverySplitCount) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 100;
  for (const DecodeShape& shape : kShapes) {
    SCOPED_TRACE(Describe(shape));
    ASSERT_TRUE(cuda::DecodeAttentionSupports(shape.head_dim, shape.group));
    DecodeBatch batch(shape.head_dim, shape.group, seed++);
    // 1; a middle value; what the backend would pick on a 132-SM H100; 32, more splits than
    // most of these sequences have pages (empty trailing splits).
    const int auto_splits =
        ChooseNumSplits(batch.n_items(), kNumKvHeads, batch.max_len(), 132,
                        cuda::DecodeAttentionBlocksPerSm(shape.head_dim), /*min_chunk_keys=*/256,
                        /*max_splits=*/32);
    for (int num_splits : {1, 5, auto_splits, 32}) {
      SCOPED_TRACE("num_splits=" + std::to_string(num_splits));
      batch.ExpectMatchesReference(batch.Run(num_splits));
    }
  }
}

TEST(DecodeAttentionCudaTest, AttendsExactlyTheFirstLenKeys) {
  TROUPE_SKIP_WITHOUT_CUDA();
  // The last keys dominate: a split boundary or a sequence end off by one key shows.
  uint32_t seed = 150;
  for (const DecodeShape& shape : {DecodeShape{128, 4}, DecodeShape{64, 1}, DecodeShape{8, 3}}) {
    SCOPED_TRACE(Describe(shape));
    DecodeBatch batch(shape.head_dim, shape.group, seed++, /*rising=*/true);
    for (int num_splits : {1, 5, 32}) {
      SCOPED_TRACE("num_splits=" + std::to_string(num_splits));
      batch.ExpectMatchesReference(batch.Run(num_splits));
    }
  }
}

TEST(DecodeAttentionCudaTest, SplitCountDoesNotChangeTheResult) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 200;
  for (const DecodeShape& shape : kShapes) {
    SCOPED_TRACE(Describe(shape));
    DecodeBatch batch(shape.head_dim, shape.group, seed++);
    const std::vector<float> one = batch.Run(1);
    for (int num_splits : {2, 7, 32}) {
      SCOPED_TRACE("num_splits=" + std::to_string(num_splits));
      std::vector<float> lse;
      const std::vector<float> many = batch.Run(num_splits, &lse);
      // Both are f32 results rounded once to bf16; only the summation order differs.
      EXPECT_TRUE(testing::WithinBf16Ulps(batch.ItemRows(many), batch.ItemRows(one), 2.0f, 1e-4));
      batch.ExpectLseMatches(lse, num_splits);
    }
  }
}

// Lengths on both sides of a tile and of several, shorter than a tile, and thousands of tiles;
// pages of 1, 4 and 8 keys put many scattered pages in one tile, and at 1 key per page the long
// sequence crosses the staged page window (256 ids) many times. Rising scores: a key lost or
// read twice at a boundary shows.
TEST(DecodeAttentionCudaTest, PipelineBoundaries) {
  TROUPE_SKIP_WITHOUT_CUDA();
  const std::vector<int> seq_lens = {1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 257, 3001};
  uint32_t seed = 300;
  for (const DecodeShape& shape :
       {DecodeShape{128, 4}, DecodeShape{64, 1}, DecodeShape{32, 8}, DecodeShape{16, 2},
        DecodeShape{8, 3}}) {
    for (int block_size : {1, 4, 8}) {
      SCOPED_TRACE(Describe(shape) + " block_size=" + std::to_string(block_size));
      ASSERT_TRUE(cuda::DecodeAttentionSupports(shape.head_dim, shape.group));
      const bool rising = seed % 2 == 0;
      DecodeBatch batch(shape.head_dim, shape.group, seed++, rising, seq_lens, block_size);
      for (int num_splits : {1, 3}) {
        SCOPED_TRACE("num_splits=" + std::to_string(num_splits));
        batch.ExpectMatchesReference(batch.Run(num_splits));
      }
    }
  }
}

}  // namespace
}  // namespace troupe
