#include "engine/kv/block_pool.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(BlockPoolTest, AllocatesDistinctBlocksUntilEmpty) {
  BlockPool pool(4);
  std::vector<BlockId> a = pool.Allocate(3);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_FALSE(pool.CanAllocate(2));
  std::vector<BlockId> b = pool.Allocate(1);
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<BlockId>{0, 1, 2, 3}));
  EXPECT_EQ(pool.num_used(), 4);
}

TEST(BlockPoolTest, FreesBlockWhenLastRefDropped) {
  BlockPool pool(2);
  BlockId b = pool.Allocate(1)[0];
  pool.AddRef(b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 1);  // still referenced once
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.ref_count(b), 0);
}

TEST(BlockPoolTest, BlocksForTokensRoundsUp) {
  EXPECT_EQ(BlocksForTokens(0, 16), 0);
  EXPECT_EQ(BlocksForTokens(1, 16), 1);
  EXPECT_EQ(BlocksForTokens(16, 16), 1);
  EXPECT_EQ(BlocksForTokens(17, 16), 2);
}

}  // namespace
}  // namespace troupe
