// Tests of the paged-KV index arithmetic shared with the CUDA kernels (kernels/paged_index.h).
#include "kernels/paged_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace troupe {
namespace {

TEST(PagedIndexTest, SlotFollowsTheBlockTable) {
  const std::vector<int32_t> table = {7, 2, -1, 5};
  EXPECT_EQ(PagedSlot(table.data(), 0, 16), 7 * 16);
  EXPECT_EQ(PagedSlot(table.data(), 15, 16), 7 * 16 + 15);
  EXPECT_EQ(PagedSlot(table.data(), 16, 16), 2 * 16);
  EXPECT_EQ(PagedSlot(table.data(), 33, 16), -1);
  EXPECT_EQ(PagedSlot(table.data(), 63, 16), 5 * 16 + 15);
}

TEST(PagedIndexTest, KvRowOffsetIsSlotMajor) {
  EXPECT_EQ(KvRowOffset(0, 0, 8, 128), 0);
  EXPECT_EQ(KvRowOffset(0, 3, 8, 128), 3 * 128);
  EXPECT_EQ(KvRowOffset(5, 1, 8, 128), (5 * 8 + 1) * 128);
  // Past 2^31 elements: a large cache must not overflow int.
  EXPECT_EQ(KvRowOffset(3'000'000, 7, 8, 128), (3'000'000LL * 8 + 7) * 128);
}

TEST(PagedIndexTest, SplitsCoverEveryKeyOnceInWholeBlocks) {
  for (int block_size : {1, 16}) {
    for (int seq_len : {1, 15, 16, 17, 100, 1000, 4097}) {
      for (int splits : {1, 2, 3, 7, 64}) {
        int next = 0;
        for (int s = 0; s < splits; ++s) {
          const KeyRange r = SplitKeyRange(seq_len, splits, s, block_size);
          if (r.begin >= r.end) {
            EXPECT_EQ(r.begin, seq_len) << "empty chunks only at the end";
            continue;
          }
          EXPECT_EQ(r.begin, next) << seq_len << " " << splits << " " << s;
          EXPECT_EQ(r.begin % block_size, 0);
          next = r.end;
        }
        EXPECT_EQ(next, seq_len) << "block " << block_size << " len " << seq_len << " splits "
                                 << splits;
      }
    }
  }
}

TEST(PagedIndexTest, NumSplitsFillsTheMachineWithinLimits) {
  // One sequence, 8 kv heads, 132 SMs x 2 blocks: 33 splits would fill the wave exactly; 30
  // (240 of 264 blocks) is within 10 % of that, and fewer.
  EXPECT_EQ(ChooseNumSplits(1, 8, 16384, 132, 2, 256, 64), 30);
  // Short context caps the split count (no chunk under 256 keys).
  EXPECT_EQ(ChooseNumSplits(1, 8, 1000, 132, 2, 256, 64), 4);
  // A large batch already fills the machine.
  EXPECT_EQ(ChooseNumSplits(64, 8, 4096, 132, 2, 256, 64), 1);
  // The workspace bound wins over both.
  EXPECT_EQ(ChooseNumSplits(1, 1, 1 << 20, 132, 4, 16, 8), 8);
  EXPECT_EQ(ChooseNumSplits(0, 8, 100, 132, 2, 256, 64), 1);
}

// Time of a grid in units of one full-sequence block: waves of chunk-long blocks.
double GridTime(int items, int splits, int wave) {
  const int waves = (items * splits + wave - 1) / wave;
  return static_cast<double>(waves) / splits;
}

// Batch 32 x 8 kv heads on 132 SMs holding 3 blocks each: 2 splits (what assuming 2 blocks per
// SM gave) make 512 blocks, 1.29 waves; 3 splits make 768 blocks, two full waves but 24 blocks.
TEST(PagedIndexTest, NumSplitsLeavesNoPartialWave) {
  EXPECT_EQ(ChooseNumSplits(32, 8, 8192, 132, 3, 256, 32), 3);
  // Across batches, kv heads, occupancies and length caps, no other candidate finishes more
  // than 10 % sooner.
  for (int wave : {132 * 2, 132 * 3, 132 * 4, 108 * 4}) {
    for (int kv_heads : {1, 2, 8}) {
      for (int n_seqs = 1; n_seqs <= 256; ++n_seqs) {
        for (int max_len : {256, 1024, 4096, 1 << 20}) {
          const int items = n_seqs * kv_heads;
          const int chosen = ChooseNumSplits(n_seqs, kv_heads, max_len, wave, 1, 256, 32);
          const int limit = std::min(32, CeilDiv(max_len, 256));
          ASSERT_GE(chosen, 1);
          ASSERT_LE(chosen, limit);
          for (int s = 1; s <= limit; ++s) {
            ASSERT_LE(GridTime(items, chosen, wave), GridTime(items, s, wave) / 0.9 + 1e-9)
                << "wave " << wave << " items " << items << " len " << max_len << ": " << chosen
                << " splits, but " << s << " would be faster";
          }
        }
      }
    }
  }
}

TEST(PagedIndexTest, ShortContextsGetFewSplits) {
  for (int n_seqs : {1, 2, 8, 64}) {
    EXPECT_EQ(ChooseNumSplits(n_seqs, 8, 1, 132, 4, 256, 32), 1);
    EXPECT_EQ(ChooseNumSplits(n_seqs, 8, 256, 132, 4, 256, 32), 1);
    EXPECT_LE(ChooseNumSplits(n_seqs, 8, 300, 132, 4, 256, 32), 2);
    EXPECT_LE(ChooseNumSplits(n_seqs, 8, 1024, 132, 4, 256, 32), 4);
  }
}

}  // namespace
}  // namespace troupe
