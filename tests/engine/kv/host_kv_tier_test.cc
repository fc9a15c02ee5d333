// The host tier's bookkeeping (HostKvTier), the block pool's offloads and restores through it,
// and the scheduler's prefix lookups across both tiers. No KV bytes move here: the copies are
// checked as the pool logs them (the backends' copies are tested in
// tests/engine/backend/host_kv_copy_test.cc and host_kv_cuda_test.cc).
#include "engine/kv/host_kv_tier.h"

#include <memory>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/scheduler/scheduler.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

BlockKey KeyFor(BlockHash parent, std::vector<TokenId> tokens, uint64_t salt = 0) {
  return BlockKey{.hash = HashBlock(parent, tokens, salt), .parent = parent, .salt = salt,
                  .tokens = std::move(tokens)};
}

using Dir = KvBlockCopy::Direction;

TEST(HostKvTierTest, EvictsTheLeastRecentlyUsedWhenFull) {
  std::vector<KvEvent> events;
  HostKvTier tier(2);
  tier.RecordEvents(&events);
  const BlockKey a = KeyFor(kNoParentHash, {1}), b = KeyFor(kNoParentHash, {2}), c = KeyFor(kNoParentHash, {3});
  const int sa = tier.Insert(a);
  const int sb = tier.Insert(b);
  EXPECT_NE(sa, sb);
  EXPECT_EQ(tier.num_used(), 2);
  tier.Touch(sa);  // b is now the least recently used
  const int sc = tier.Insert(c);
  EXPECT_EQ(sc, sb);
  EXPECT_EQ(tier.Find(a), sa);
  EXPECT_EQ(tier.Find(b), -1);
  EXPECT_EQ(tier.Find(c), sc);
  EXPECT_EQ(tier.num_used(), 2);
  EXPECT_EQ(tier.num_evicted(), 1);
  // Stored a, stored b, removed b, stored c: all for the host medium.
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].kind, KvEvent::Kind::kRemoved);
  EXPECT_EQ(events[2].hash, b.hash);
  for (const KvEvent& e : events) EXPECT_EQ(e.medium, KvEvent::Medium::kHost);
}

TEST(HostKvTierTest, FindComparesTokensParentAndSalt) {
  HostKvTier tier(4);
  const BlockKey key = KeyFor(kNoParentHash, {7, 8}, /*salt=*/5);
  tier.Insert(key);
  BlockKey other_tenant = key;
  other_tenant.salt = 6;
  BlockKey other_tokens = key;
  other_tokens.tokens = {7, 9};
  BlockKey other_parent = key;
  other_parent.parent = 1;
  EXPECT_GE(tier.Find(key), 0);
  EXPECT_EQ(tier.Find(other_tenant), -1);
  EXPECT_EQ(tier.Find(other_tokens), -1);
  EXPECT_EQ(tier.Find(other_parent), -1);
}

// A pool of 2 device blocks over a tier of 3 host slots: evicting a cached block copies it out.
TEST(HostKvTierTest, PoolOffloadsEvictedFullBlocksAndRestoresThem) {
  std::vector<KvEvent> events;
  BlockPool pool(2);
  HostKvTier tier(3);
  pool.RecordEvents(&events);
  tier.RecordEvents(&events);
  pool.AttachHostTier(&tier);
  const BlockKey k0 = KeyFor(kNoParentHash, {1, 2});
  const BlockId b0 = pool.Allocate(1)[0];
  ASSERT_TRUE(pool.Register(b0, k0));
  pool.Release(b0);
  EXPECT_TRUE(pool.TakeCopies().empty());  // cached, not evicted: nothing moves
  // Both blocks wanted: the cached one is evicted, and copied to the host first.
  std::vector<BlockId> got = pool.Allocate(2);
  std::vector<KvBlockCopy> copies = pool.TakeCopies();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].direction, Dir::kToHost);
  EXPECT_EQ(copies[0].device_block, b0);
  EXPECT_EQ(copies[0].host_slot, tier.Find(k0));
  EXPECT_EQ(pool.num_offloaded(), 1);
  EXPECT_EQ(pool.Lookup(k0), -1);
  pool.ReleaseAll(got);

  // The prefix lookup's second tier: a device block comes back holding k0.
  const BlockId r = pool.Restore(k0);
  ASSERT_GE(r, 0);
  EXPECT_EQ(pool.ref_count(r), 1);
  EXPECT_EQ(pool.Lookup(k0), r);  // registered again: another sequence shares it
  copies = pool.TakeCopies();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].direction, Dir::kToDevice);
  EXPECT_EQ(copies[0].device_block, r);
  EXPECT_EQ(copies[0].host_slot, tier.Find(k0));
  EXPECT_EQ(pool.num_restored(), 1);
  EXPECT_EQ(pool.Restore(KeyFor(kNoParentHash, {9, 9})), -1);  // not in the tier
  EXPECT_TRUE(pool.TakeCopies().empty());

  // Evicted again: the tier still holds it, so nothing is copied.
  pool.Release(r);
  got = pool.Allocate(2);
  EXPECT_TRUE(pool.TakeCopies().empty());
  EXPECT_EQ(pool.num_offloaded(), 1);
  pool.ReleaseAll(got);

  // Device stored, host stored, device removed, device stored (restored), device removed.
  std::vector<std::pair<KvEvent::Kind, KvEvent::Medium>> want = {
      {KvEvent::Kind::kStored, KvEvent::Medium::kDevice}, {KvEvent::Kind::kStored, KvEvent::Medium::kHost},
      {KvEvent::Kind::kRemoved, KvEvent::Medium::kDevice}, {KvEvent::Kind::kStored, KvEvent::Medium::kDevice},
      {KvEvent::Kind::kRemoved, KvEvent::Medium::kDevice}};
  ASSERT_EQ(events.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(events[i].kind, want[i].first) << i;
    EXPECT_EQ(events[i].medium, want[i].second) << i;
    EXPECT_EQ(events[i].hash, k0.hash) << i;
  }
}

TEST(HostKvTierTest, PartialBlocksAreNotOffloaded) {
  BlockPool pool(1);
  HostKvTier tier(2);
  pool.AttachHostTier(&tier);
  const BlockId b = pool.Allocate(1)[0];
  pool.RegisterPartial(b, BlockKey{.hash = 0, .parent = kNoParentHash, .salt = 0, .tokens = {1, 2, 3}});
  pool.Release(b);
  pool.ReleaseAll(pool.Allocate(1));
  EXPECT_TRUE(pool.TakeCopies().empty());
  EXPECT_EQ(tier.num_used(), 0);
}

// The copies come in the order decided, so a slot the tier reuses for an offload is read by an
// earlier restore first, and a device block an offload reads is written by a later restore.
TEST(HostKvTierTest, CopiesKeepTheOrderTheyWereDecidedIn) {
  BlockPool pool(1);
  HostKvTier tier(1);
  pool.AttachHostTier(&tier);
  const BlockKey k0 = KeyFor(kNoParentHash, {1}), k1 = KeyFor(kNoParentHash, {2});
  BlockId b = pool.Allocate(1)[0];
  ASSERT_TRUE(pool.Register(b, k0));
  pool.Release(b);
  b = pool.Allocate(1)[0];  // k0 -> host slot 0
  ASSERT_TRUE(pool.Register(b, k1));
  pool.Release(b);
  // Restoring k0 needs the only device block, which holds k1: k1 would go to the only slot,
  // which holds k0 itself. The tier cannot hold both, so the restore gives up.
  EXPECT_EQ(pool.Restore(k0), -1);
  std::vector<KvBlockCopy> copies = pool.TakeCopies();
  ASSERT_EQ(copies.size(), 2u);  // k0's offload, then k1's over the same slot
  EXPECT_EQ(copies[0].direction, Dir::kToHost);
  EXPECT_EQ(copies[1].direction, Dir::kToHost);
  EXPECT_EQ(copies[0].host_slot, copies[1].host_slot);
  EXPECT_EQ(tier.Find(k1), 0);
  EXPECT_EQ(pool.num_free(), 1);
}

// ---- the scheduler: prefix lookups see both tiers ----

std::unique_ptr<Sequence> MakeSeq(RequestId id, std::vector<TokenId> tokens) {
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->arrival_order = id;
  seq->tokens = std::move(tokens);
  seq->num_prompt_tokens = seq->num_tokens();
  return seq;
}

std::vector<TokenId> Tokens(int first, int n) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(first + i);
  return t;
}

// Runs a sequence alone to the end of its prompt (one token sampled), then removes it.
void RunPrompt(Scheduler& scheduler, BlockPool& pool, Sequence* seq) {
  scheduler.Add(seq);
  while (seq->num_computed < seq->num_tokens()) {
    StepPlan plan = scheduler.Schedule();
    ASSERT_FALSE(plan.empty());
    scheduler.Update(plan);
  }
  scheduler.Remove(seq);
  (void)pool;
}

TEST(HostKvTierTest, SchedulerRestoresAPrefixEvictedToTheHostTier) {
  // 4 device blocks of 4 tokens; a 10-slot tier.
  BlockPool pool(4);
  HostKvTier tier(10);
  pool.AttachHostTier(&tier);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 64, .block_size = 4}, pool);
  // A session's turn: 12 tokens (3 full blocks cached after it).
  auto a = MakeSeq(1, Tokens(100, 12));
  RunPrompt(scheduler, pool, a.get());
  EXPECT_EQ(pool.num_cached(), 3);
  // Another session takes the whole pool: a's blocks go to the host.
  auto b = MakeSeq(2, Tokens(500, 15));
  RunPrompt(scheduler, pool, b.get());
  std::vector<KvBlockCopy> copies = pool.TakeCopies();
  EXPECT_GE(pool.num_offloaded(), 2);
  for (const KvBlockCopy& c : copies) EXPECT_EQ(c.direction, Dir::kToHost);
  // a's next turn: its 12 tokens and 4 more. Its first blocks come back from the host.
  std::vector<TokenId> turn2 = Tokens(100, 16);
  auto a2 = MakeSeq(3, turn2);
  scheduler.Add(a2.get());
  StepPlan plan = scheduler.Schedule();
  ASSERT_EQ(plan.seqs.size(), 1u);
  copies = pool.TakeCopies();
  int restores = 0;
  for (const KvBlockCopy& c : copies) restores += c.direction == Dir::kToDevice;
  EXPECT_EQ(restores, a2->num_restored_blocks);
  EXPECT_GE(restores, 2);
  EXPECT_EQ(a2->num_computed, restores * 4);
  EXPECT_EQ(plan.seqs[0].num_tokens, 16 - restores * 4);
  // Counted as prefix-cache hits, and as host hits.
  EXPECT_EQ(scheduler.prefix_cache_stats().hits, restores * 4);
  EXPECT_EQ(scheduler.prefix_cache_stats().host_hits, restores * 4);
  scheduler.Update(plan);
  scheduler.Remove(a2.get());
}

TEST(HostKvTierTest, RestoresWhileTheFreeBlocksHoldTheBlockAndOneStepAfterIt) {
  // 8 device blocks of 4 tokens, steps of at most 8 tokens.
  BlockPool pool(8);
  HostKvTier tier(16);
  pool.AttachHostTier(&tier);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 8, .block_size = 4}, pool);
  auto a = MakeSeq(1, Tokens(100, 16));  // 4 full blocks
  RunPrompt(scheduler, pool, a.get());
  auto b = MakeSeq(2, Tokens(500, 32));  // takes the whole pool: a's blocks go to the host
  RunPrompt(scheduler, pool, b.get());
  ASSERT_EQ(pool.num_offloaded(), 4);
  pool.TakeCopies();
  // Other sequences hold 3 blocks: 5 are free, fewer than a's next turn needs in all (6).
  const std::vector<BlockId> held = pool.Allocate(3);
  ASSERT_EQ(pool.num_free(), 5);
  auto a2 = MakeSeq(3, Tokens(100, 24));
  scheduler.Add(a2.get());
  const StepPlan plan = scheduler.Schedule();
  // Each restore leaves room for itself and the next step's 8 tokens (2 blocks): 3 of a's 4
  // host blocks come back (5 -> 2 free), the 4th is recomputed with the first chunk.
  EXPECT_EQ(a2->num_restored_blocks, 3);
  int restores = 0;
  for (const KvBlockCopy& c : pool.TakeCopies()) restores += c.direction == Dir::kToDevice;
  EXPECT_EQ(restores, 3);
  ASSERT_EQ(plan.seqs.size(), 1u);
  EXPECT_EQ(plan.seqs[0].seq, a2.get());
  EXPECT_EQ(plan.seqs[0].num_tokens, 8);  // tokens 12..19, into 2 newly allocated blocks
  EXPECT_EQ(pool.num_free(), 0);
  pool.ReleaseAll(held);
}

TEST(HostKvTierTest, WithoutATierEvictedPrefixesAreRecomputed) {
  BlockPool pool(4);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 64, .block_size = 4}, pool);
  auto a = MakeSeq(1, Tokens(100, 12));
  RunPrompt(scheduler, pool, a.get());
  auto b = MakeSeq(2, Tokens(500, 15));
  RunPrompt(scheduler, pool, b.get());
  auto a2 = MakeSeq(3, Tokens(100, 16));
  scheduler.Add(a2.get());
  StepPlan plan = scheduler.Schedule();
  ASSERT_EQ(plan.seqs.size(), 1u);
  EXPECT_EQ(plan.seqs[0].num_tokens, 16);
  EXPECT_TRUE(pool.TakeCopies().empty());
  scheduler.Update(plan);
  scheduler.Remove(a2.get());
}

}  // namespace
}  // namespace troupe
