#include "engine/kv/block_pool.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "tests/testing/thread_testing.h"

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

BlockKey KeyFor(BlockHash parent, std::vector<TokenId> tokens, uint64_t salt = 0) {
  return BlockKey{.hash = HashBlock(parent, tokens, salt), .parent = parent, .salt = salt,
                  .tokens = std::move(tokens)};
}

TEST(BlockPoolTest, CachedBlockSurvivesReleaseAndIsFoundAgain) {
  BlockPool pool(4);
  const BlockId b = pool.Allocate(1)[0];
  const BlockKey key = KeyFor(kNoParentHash, {1, 2, 3, 4});
  EXPECT_EQ(pool.Lookup(key), -1);
  ASSERT_TRUE(pool.Register(b, key));
  EXPECT_EQ(pool.Lookup(key), b);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 4);  // evictable counts as free
  EXPECT_EQ(pool.num_cached(), 1);
  EXPECT_EQ(pool.Lookup(key), b);
  pool.AddRef(b);  // revived without recomputation
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.ref_count(b), 1);
}

TEST(BlockPoolTest, LookupComparesTokensParentAndSaltNotJustTheHash) {
  BlockPool pool(2);
  const BlockId b = pool.Allocate(1)[0];
  BlockKey key = KeyFor(kNoParentHash, {7, 8});
  ASSERT_TRUE(pool.Register(b, key));
  BlockKey forged = key;  // same hash, different content: a collision must not match
  forged.tokens = {7, 9};
  EXPECT_EQ(pool.Lookup(forged), -1);
  forged = key;
  forged.salt = 1;
  EXPECT_EQ(pool.Lookup(forged), -1);
  forged = key;
  forged.parent = 5;
  EXPECT_EQ(pool.Lookup(forged), -1);
  EXPECT_NE(KeyFor(kNoParentHash, {7, 8}, CacheSaltOf("a")).hash,
            KeyFor(kNoParentHash, {7, 8}, CacheSaltOf("b")).hash);
}

TEST(BlockPoolTest, SecondBlockWithTheSameHashStaysUncached) {
  BlockPool pool(2);
  const std::vector<BlockId> two = pool.Allocate(2);
  const BlockKey key = KeyFor(kNoParentHash, {1, 2});
  EXPECT_TRUE(pool.Register(two[0], key));
  EXPECT_FALSE(pool.Register(two[1], key));
  EXPECT_FALSE(pool.is_cached(two[1]));
  EXPECT_EQ(pool.Lookup(key), two[0]);
}

TEST(BlockPoolTest, EvictsOnlyWhenUncachedBlocksRunOutOldestReleaseFirst) {
  BlockPool pool(4);
  const std::vector<BlockId> all = pool.Allocate(4);
  std::vector<BlockKey> keys;
  for (int i = 0; i < 3; ++i) {
    keys.push_back(KeyFor(kNoParentHash, {i}));
    ASSERT_TRUE(pool.Register(all[i], keys[i]));
  }
  pool.Release(all[1]);  // released first: the oldest
  pool.Release(all[0]);
  pool.Release(all[2]);
  pool.Release(all[3]);  // uncached
  EXPECT_EQ(pool.Allocate(1)[0], all[3]);  // the uncached block goes first
  EXPECT_EQ(pool.num_cached(), 3);
  EXPECT_EQ(pool.Allocate(1)[0], all[1]);  // then the least recently released cached one
  EXPECT_EQ(pool.Lookup(keys[1]), -1);
  EXPECT_EQ(pool.Lookup(keys[0]), all[0]);
  pool.AddRef(all[0]);  // in use again: no longer evictable
  EXPECT_EQ(pool.Allocate(1)[0], all[2]);
  EXPECT_FALSE(pool.CanAllocate(1));
  EXPECT_EQ(pool.num_cached(), 1);
}

TEST(BlockPoolTest, ReleaseAllQueuesTheTailForEvictionFirst) {
  BlockPool pool(3);
  const std::vector<BlockId> seq = pool.Allocate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.Register(seq[i], KeyFor(kNoParentHash, {i})));
  pool.ReleaseAll(seq);
  EXPECT_EQ(pool.Allocate(1)[0], seq[2]);
  EXPECT_EQ(pool.Allocate(1)[0], seq[1]);
}

TEST(BlockPoolTest, PartialBlockIsAdoptedByTheLongestMatchWithinItsTenant) {
  BlockPool pool(4);
  const std::vector<BlockId> two = pool.Allocate(2);
  const BlockHash parent = 77;
  pool.RegisterPartial(two[0], BlockKey{.parent = parent, .salt = 1, .tokens = {5, 6, 7}});
  pool.RegisterPartial(two[1], BlockKey{.parent = parent, .salt = 1, .tokens = {5, 9}});
  const std::vector<TokenId> wanted = {5, 6, 8, 1};
  // Still referenced by their writers: not offered.
  EXPECT_EQ(pool.TakePartial(parent, 1, wanted, 15).first, -1);
  pool.Release(two[0]);
  pool.Release(two[1]);
  EXPECT_EQ(pool.num_free(), 4);  // evictable counts as free
  EXPECT_EQ(pool.TakePartial(parent, 2, wanted, 15).first, -1);  // another tenant
  EXPECT_EQ(pool.TakePartial(99, 1, wanted, 15).first, -1);      // another chain
  const auto [block, len] = pool.TakePartial(parent, 1, wanted, 15);
  EXPECT_EQ(block, two[0]);  // {5, 6} beats {5}
  EXPECT_EQ(len, 2);
  EXPECT_EQ(pool.ref_count(block), 1);
  EXPECT_FALSE(pool.is_cached(block));
  EXPECT_EQ(pool.num_partial(), 1);
  EXPECT_EQ(pool.TakePartial(parent, 1, wanted, 0).first, -1);  // nothing may be reused
  // The other one is evicted like any cached block when the pool runs short.
  pool.Allocate(3);
  EXPECT_EQ(pool.num_partial(), 0);
}

// KV-cache events (kv_event.h): a full block registered is stored, a full block evicted is
// removed, in order; partial blocks, second registrations of a hash and blocks merely released
// make none.
TEST(BlockPoolTest, RecordsStoredAndEvictedFullBlocksOnly) {
  BlockPool pool(3);
  std::vector<KvEvent> events;
  pool.RecordEvents(&events);
  const std::vector<BlockId> blocks = pool.Allocate(3);
  const BlockKey first = KeyFor(kNoParentHash, {1});
  const BlockKey second = KeyFor(first.hash, {2});
  ASSERT_TRUE(pool.Register(blocks[0], first));
  ASSERT_TRUE(pool.Register(blocks[1], second));
  pool.RegisterPartial(blocks[2], BlockKey{.hash = 0, .parent = second.hash, .salt = 0, .tokens = {3}});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, KvEvent::Kind::kStored);
  EXPECT_EQ(events[0].hash, first.hash);
  EXPECT_EQ(events[0].parent, kNoParentHash);
  EXPECT_EQ(events[0].tokens, first.tokens);
  EXPECT_EQ(events[1].hash, second.hash);
  EXPECT_EQ(events[1].parent, first.hash);

  pool.ReleaseAll(blocks);  // cached, evictable: no event yet
  EXPECT_EQ(events.size(), 2u);
  const std::vector<BlockId> again = pool.Allocate(3);  // evicts everything
  ASSERT_EQ(events.size(), 4u);  // the two full blocks; the partial one silently
  EXPECT_EQ(events[2].kind, KvEvent::Kind::kRemoved);
  EXPECT_EQ(events[3].kind, KvEvent::Kind::kRemoved);
  EXPECT_EQ((std::vector<BlockHash>{events[2].hash, events[3].hash}),
            (std::vector<BlockHash>{second.hash, first.hash}));  // the tail is evicted first

  ASSERT_TRUE(pool.Register(again[0], first));
  EXPECT_FALSE(pool.Register(again[1], first));  // the hash is held: no second event
  EXPECT_EQ(events.size(), 5u);
  pool.RecordEvents(nullptr);
  pool.Release(again[0]);
  pool.Allocate(1);  // evicts `first` again, unrecorded
  EXPECT_EQ(events.size(), 5u);
}

TEST(BlockPoolTest, BlocksForTokensRoundsUp) {
  EXPECT_EQ(BlocksForTokens(0, 16), 0);
  EXPECT_EQ(BlocksForTokens(1, 16), 1);
  EXPECT_EQ(BlocksForTokens(16, 16), 1);
  EXPECT_EQ(BlocksForTokens(17, 16), 2);
}

// Engine thread only: the pool binds to the thread that first changes it (debug builds).
TEST(BlockPoolDeathTest, MutatorOnAnotherThreadAborts) {
  TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE();
  BlockPool pool(2);
  const BlockId b = pool.Allocate(1)[0];
  EXPECT_DEATH(testing::RunOnOtherThread([&] { pool.Release(b); }), testing::kNotOnOwnerThread);
  EXPECT_DEATH(testing::RunOnOtherThread([&] { pool.Allocate(1); }), testing::kNotOnOwnerThread);
}

TEST(BlockPoolTest, ThreadThatFirstChangesItOwnsIt) {
  BlockPool pool(2);  // built on this thread
  testing::RunOnOtherThread([&] {
    const BlockId b = pool.Allocate(1)[0];
    pool.AddRef(b);
    pool.Release(b);
    pool.Release(b);
  });
  EXPECT_EQ(pool.num_free(), 2);  // const queries are fine from any thread
}

}  // namespace
}  // namespace troupe
