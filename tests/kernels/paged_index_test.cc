// Tests of the paged-KV index arithmetic shared with the CUDA kernels (kernels/paged_index.h).
#include "kernels/paged_index.h"

#include <gtest/gtest.h>

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
  // One sequence, 8 kv heads, 132 SMs x 2 blocks: 33 splits would fill it; 16k keys allow it.
  EXPECT_EQ(ChooseNumSplits(1, 8, 16384, 132, 2, 256, 64), 33);
  // Short context caps the split count (no chunk under 256 keys).
  EXPECT_EQ(ChooseNumSplits(1, 8, 1000, 132, 2, 256, 64), 4);
  // A large batch already fills the machine.
  EXPECT_EQ(ChooseNumSplits(64, 8, 4096, 132, 2, 256, 64), 1);
  // The workspace bound wins over both.
  EXPECT_EQ(ChooseNumSplits(1, 1, 1 << 20, 132, 4, 16, 8), 8);
  EXPECT_EQ(ChooseNumSplits(0, 8, 100, 132, 2, 256, 64), 1);
}

}  // namespace
}  // namespace troupe
