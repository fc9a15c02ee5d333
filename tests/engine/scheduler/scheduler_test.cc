// Scheduler tests driven step by step by a fake runner that "computes" the planned tokens and
// appends one generated token to every sequence that reached its end (no model involved).
#include "engine/scheduler/scheduler.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/thread_testing.h"

namespace troupe {
namespace {

class FakeRunner {
 public:
  // Runs one step: Schedule, Update, then one new token per sampling sequence.
  StepPlan Step(Scheduler& scheduler) {
    StepPlan plan = scheduler.Schedule();
    scheduler.Update(plan);
    for (const ScheduledSeq& s : plan.seqs) {
      if (s.needs_logits) s.seq->tokens.push_back(static_cast<TokenId>(s.seq->id * 100000 + 50000 + s.seq->num_generated()));
    }
    return plan;
  }
};

std::unique_ptr<Sequence> MakeSeq(RequestId id, int prompt_len, int priority = 0) {
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->priority = priority;
  seq->arrival_order = id;
  // Distinct per sequence, so that nothing is shared through the prefix cache by accident.
  for (int i = 0; i < prompt_len; ++i) seq->tokens.push_back(static_cast<TokenId>(id * 100000 + i + 1));
  seq->num_prompt_tokens = prompt_len;
  return seq;
}

// "id:tokens[*]" per entry, '*' when it samples, e.g. "1:16 2:1*".
std::string Describe(const StepPlan& plan) {
  std::string out;
  for (const ScheduledSeq& s : plan.seqs) {
    if (!out.empty()) out += ' ';
    out += std::to_string(s.seq->id) + ":" + std::to_string(s.num_tokens) + (s.needs_logits ? "*" : "");
  }
  return out;
}

TEST(SchedulerTest, ChunksLongPromptAcrossSteps) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 16, .block_size = 16}, pool);
  auto a = MakeSeq(1, 40);
  scheduler.Add(a.get());
  FakeRunner runner;
  // step 1: [1:16]  step 2: [1:16]  step 3: [1:8*] -> first token  step 4: [1:1*]
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:16");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:16");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:8*");
  EXPECT_EQ(a->num_generated(), 1);
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1*");
  EXPECT_EQ(a->num_computed, 41);
  EXPECT_EQ(a->blocks.size(), 3u);  // 42 tokens after this step's sample need 3 blocks next
}

TEST(SchedulerTest, DecodesAndPrefillsInOneStep) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 10, .block_size = 16}, pool);
  auto a = MakeSeq(1, 4);
  auto b = MakeSeq(2, 30);
  scheduler.Add(a.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:4*");
  scheduler.Add(b.get());
  // The running decode goes first; the new prompt takes what is left of the budget.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:9");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:9");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:9");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:3*");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1*");
}

TEST(SchedulerTest, AdmissionBoundedByMaxRunning) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 2, .max_batched_tokens = 100, .block_size = 16}, pool);
  auto a = MakeSeq(1, 3), b = MakeSeq(2, 3), c = MakeSeq(3, 3);
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  scheduler.Add(c.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:3* 2:3*");
  EXPECT_EQ(scheduler.num_waiting(), 1);
  scheduler.Remove(a.get());  // finished: its slot goes to the waiting one
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:1* 3:3*");
}

TEST(SchedulerTest, AdmissionBoundedByFreeBlocks) {
  BlockPool pool(3);
  Scheduler scheduler({.max_running = 8, .max_batched_tokens = 100, .block_size = 16}, pool);
  auto a = MakeSeq(1, 20), b = MakeSeq(2, 20);  // 2 blocks each
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:20*");
  EXPECT_EQ(scheduler.num_waiting(), 1);
  EXPECT_EQ(pool.num_free(), 1);
}

TEST(SchedulerTest, PreemptsNewestUnderKvPressureAndResumes) {
  BlockPool pool(4);  // 64 token slots
  Scheduler scheduler({.max_running = 8, .max_batched_tokens = 100, .block_size = 16,
                       .enable_prefix_caching = false},
                      pool);
  auto a = MakeSeq(1, 30), b = MakeSeq(2, 31);  // 2 blocks each; both cross into block 3 soon
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:30* 2:31*");  // a: 31 tokens, b: 32 tokens
  EXPECT_EQ(pool.num_free(), 0);
  // Positions 30 and 31 still fit in two blocks each.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1*");
  // Now b's position 32 needs a third block and the pool is dry.
  StepPlan plan = runner.Step(scheduler);
  // a (older) keeps running; b (newest) is preempted and waits with its KV dropped.
  EXPECT_EQ(Describe(plan), "1:1*");
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(plan.preempted[0], b.get());
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_EQ(b->num_preemptions, 1);
  EXPECT_EQ(b->num_generated(), 2);  // generated tokens survive and are recomputed
  scheduler.Remove(a.get());
  // b is readmitted and recomputes prompt + generated tokens in one step, then samples.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:33*");
  EXPECT_EQ(b->num_generated(), 3);
}

// The same squeeze with prefix caching: b's two full blocks were registered before it was
// preempted and nobody needed them since, so readmission recomputes one token, not 33.
TEST(SchedulerTest, PreemptedSequenceResumesFromItsCachedBlocks) {
  BlockPool pool(4);
  Scheduler scheduler({.max_running = 8, .max_batched_tokens = 100, .block_size = 16}, pool);
  auto a = MakeSeq(1, 30), b = MakeSeq(2, 31);
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:30* 2:31*");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1*");  // b's blocks 0 and 1 now full
  StepPlan plan = runner.Step(scheduler);
  EXPECT_EQ(Describe(plan), "1:1*");
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(pool.num_cached(), 4);  // both blocks of each (a's second filled this step)
  scheduler.Remove(a.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:1*");
  EXPECT_EQ(b->num_generated(), 3);
  EXPECT_EQ(b->num_cached_tokens, 0);  // usage counts the first admission only
  EXPECT_EQ(scheduler.prefix_cache_stats().hits, 0);
}

// A long prompt admitted before the streams must not take the budget from their decodes.
TEST(SchedulerTest, DecodesGoBeforeUnfinishedPrefills) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 8, .block_size = 16}, pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 4), big = MakeSeq(2, 40);
  scheduler.Add(a.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:4*");
  scheduler.Add(big.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:7");
  auto b = MakeSeq(3, 2);
  scheduler.Add(b.get());
  // big (admitted before b) still prefills; b's prompt waits for room, a decodes first.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:7");
  scheduler.Remove(big.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 3:2*");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 3:1*");
}

// With streams decoding, prefill chunks are capped so a long prompt stretches each decode step
// by at most that many tokens; alone, it takes the whole budget.
TEST(SchedulerTest, PrefillChunksAreCappedWhileStreamsDecode) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 64, .block_size = 16,
                       .max_prefill_tokens_while_decoding = 8},
                      pool);
  FakeRunner runner;
  auto big = MakeSeq(1, 100);
  scheduler.Add(big.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:64");  // nothing decodes: the whole budget
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:36*");
  auto c = MakeSeq(2, 20), d = MakeSeq(3, 5);
  scheduler.Add(c.get());
  scheduler.Add(d.get());
  // big decodes; c and d share an 8-token prefill allowance per step, in arrival order.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:8");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:8");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:4* 3:4");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1* 3:1*");
}

// The cost cap: a chunk's cost grows with the context it attends to, so a long prompt gets fewer
// tokens per step the deeper it is, keeping each step within (1 + ratio) x the decodes' cost.
TEST(SchedulerTest, PrefillChunksFitTheCostBudgetWhileStreamsDecode) {
  EXPECT_DOUBLE_EQ(ChunkCost(0, 4, 0.1), 4 + 0.1 * 10);  // pairs 1 + 2 + 3 + 4
  EXPECT_DOUBLE_EQ(ChunkCost(40, 1, 0.1), 1 + 0.1 * 41);
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 64, .block_size = 16,
                       .max_prefill_cost_ratio_while_decoding = 1.0, .attention_pair_cost = 0.1},
                      pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 40);
  scheduler.Add(a.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:40*");  // nothing decodes: no cost cap
  auto b = MakeSeq(2, 30), c = MakeSeq(3, 5);
  scheduler.Add(b.get());
  scheduler.Add(c.get());
  // a's decode at 40 computed costs 1 + 0.1 * 41 = 5.1: b's first 4 tokens cost 5.0, 5 would
  // cost 6.5; c waits, as nothing is left for it.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:4");
  // a costs 5.2 now; b's next 3 tokens (from 4 computed) cost 4.8, 4 would cost 6.6.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:3");
  scheduler.Remove(a.get());
  // Without decodes b and c take the whole token budget again.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:23* 3:5*");
}

// A tiny cost ratio still lets the first prefill of every step advance by one token.
TEST(SchedulerTest, PrefillUnderTinyCostBudgetStillAdvances) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 64, .block_size = 16,
                       .max_prefill_cost_ratio_while_decoding = 0.01, .attention_pair_cost = 0.1},
                      pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 8);
  scheduler.Add(a.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:8*");
  auto b = MakeSeq(2, 3), c = MakeSeq(3, 3);
  scheduler.Add(b.get());
  scheduler.Add(c.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1");
  // b's last prompt token is computed like a decode; c is now the step's first prefill.
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:1* 2:1* 3:1");
}

TEST(SchedulerTest, WaitingQueueOrderedByPriorityThenArrival) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 1, .max_batched_tokens = 100, .block_size = 16}, pool);
  auto low = MakeSeq(1, 2, /*priority=*/0);
  auto high = MakeSeq(2, 2, /*priority=*/5);
  auto mid = MakeSeq(3, 2, /*priority=*/1);
  scheduler.Add(low.get());
  scheduler.Add(high.get());
  scheduler.Add(mid.get());
  FakeRunner runner;
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:2*");
  scheduler.Remove(high.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "3:2*");
  scheduler.Remove(mid.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:2*");
}

// Background work below the clients' priority (the memory rater's, -100) waits behind them
// until its promote_at, then runs at priority 0 in arrival order: it cannot starve.
TEST(SchedulerTest, AgedBackgroundWorkOvertakesLaterClientRequests) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 1, .max_batched_tokens = 100, .block_size = 16}, pool);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  auto first = MakeSeq(1, 2);
  auto rating = MakeSeq(2, 2, /*priority=*/-100);
  rating->promote_at = t0 + absl::Seconds(2);
  auto later = MakeSeq(3, 2);
  auto last = MakeSeq(4, 2);
  scheduler.Add(first.get());
  scheduler.Add(rating.get());
  scheduler.Add(later.get());
  scheduler.Add(last.get());
  FakeRunner runner;
  scheduler.PromoteAged(t0);
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:2*");
  scheduler.Remove(first.get());
  scheduler.PromoteAged(t0 + absl::Seconds(1));  // not yet: the client request goes first
  EXPECT_EQ(Describe(runner.Step(scheduler)), "3:2*");
  scheduler.Remove(later.get());
  scheduler.PromoteAged(t0 + absl::Seconds(2));  // aged: priority 0, and it came before 4
  EXPECT_EQ(rating->priority, 0);
  EXPECT_EQ(rating->promote_at, absl::InfiniteFuture());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:2*");
  scheduler.Remove(rating.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "4:2*");
}

TEST(SchedulerTest, RemoveFreesBlocksOfRunningAndWaiting) {
  BlockPool pool(8);
  Scheduler scheduler({.max_running = 1, .max_batched_tokens = 100, .block_size = 16}, pool);
  auto a = MakeSeq(1, 40), b = MakeSeq(2, 5);
  scheduler.Add(a.get());
  scheduler.Add(b.get());
  FakeRunner runner;
  runner.Step(scheduler);
  EXPECT_EQ(pool.num_used(), 3);
  scheduler.Remove(b.get());  // cancelled while waiting
  scheduler.Remove(a.get());  // cancelled while running
  EXPECT_EQ(pool.num_used(), 0);
  EXPECT_EQ(scheduler.num_running(), 0);
  EXPECT_EQ(scheduler.num_waiting(), 0);
  EXPECT_TRUE(scheduler.Schedule().empty());
}

// A sequence whose first `shared` prompt tokens are `from`'s, then its own.
std::unique_ptr<Sequence> MakeSharing(RequestId id, const Sequence& from, int shared, int prompt_len,
                                      uint64_t salt = 0) {
  auto seq = MakeSeq(id, prompt_len);
  std::copy_n(from.tokens.begin(), shared, seq->tokens.begin());
  seq->cache_salt = salt;
  return seq;
}

// Runs `seq` alone until it has `generated` tokens, then removes it (its request finished:
// max_tokens or EOS). Returns the block table it had.
std::vector<BlockId> RunToCompletion(Scheduler& scheduler, FakeRunner& runner, Sequence* seq,
                                     int generated) {
  while (seq->num_generated() < generated) runner.Step(scheduler);
  std::vector<BlockId> blocks = seq->blocks;
  scheduler.Remove(seq);
  return blocks;
}

TEST(SchedulerPrefixCacheTest, HitEndsAtTheLastFullSharedBlock) {
  BlockPool pool(32);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 100, .block_size = 16}, pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 40);
  scheduler.Add(a.get());
  const std::vector<BlockId> a_blocks = RunToCompletion(scheduler, runner, a.get(), 1);
  EXPECT_EQ(pool.num_used(), 0);  // blocks [0,16) and [16,32) stay cached
  EXPECT_EQ(pool.num_cached(), 2);
  // b shares 20 tokens: the prefix ends mid-block, so one block (16 tokens) is reused and
  // b computes its other 24.
  auto b = MakeSharing(2, *a, 20, 40);
  scheduler.Add(b.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:24*");
  EXPECT_EQ(b->num_cached_tokens, 16);
  EXPECT_EQ(b->blocks[0], a_blocks[0]);
  EXPECT_EQ(scheduler.prefix_cache_stats().queries, 80);
  EXPECT_EQ(scheduler.prefix_cache_stats().hits, 16);
}

TEST(SchedulerPrefixCacheTest, WholePromptHitStillComputesTheLastToken) {
  BlockPool pool(32);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 100, .block_size = 16}, pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 32);
  scheduler.Add(a.get());
  RunToCompletion(scheduler, runner, a.get(), 2);  // computed 33 tokens: 2 full blocks
  // The same 32-token prompt: its last token's logits are needed, so the second block is
  // recomputed (into a new block) rather than shared.
  auto b = MakeSharing(2, *a, 32, 32);
  scheduler.Add(b.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:16*");
  EXPECT_EQ(b->num_cached_tokens, 16);
  // 33 tokens, 32 of them a's: both blocks shared, one token computed.
  auto c = MakeSharing(3, *a, 33, 33);
  scheduler.Add(c.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:1* 3:1*");
  EXPECT_EQ(c->num_cached_tokens, 32);
  EXPECT_EQ(pool.ref_count(c->blocks[0]), 2);  // shared with the running b
}

TEST(SchedulerPrefixCacheTest, NextTurnReusesHistoryIncludingGeneratedTokens) {
  BlockPool pool(64);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 256, .block_size = 16}, pool);
  FakeRunner runner;
  auto turn1 = MakeSeq(1, 30);
  scheduler.Add(turn1.get());
  RunToCompletion(scheduler, runner, turn1.get(), 20);  // 49 computed: 3 full blocks + 1
  // Turn 2 = turn 1's prompt and reply, then 12 new tokens: the 3 full blocks are shared and
  // the partly filled fourth (1 token) is adopted, so only the 13 new tokens are computed.
  auto turn2 = MakeSeq(2, 50 + 12);
  std::copy(turn1->tokens.begin(), turn1->tokens.end(), turn2->tokens.begin());
  scheduler.Add(turn2.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:13*");
  EXPECT_EQ(turn2->num_cached_tokens, 49);
}

TEST(SchedulerPrefixCacheTest, SaltSeparatesTenants) {
  BlockPool pool(32);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 100, .block_size = 16}, pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 40);
  a->cache_salt = CacheSaltOf("tenant-a");
  scheduler.Add(a.get());
  RunToCompletion(scheduler, runner, a.get(), 1);
  auto other = MakeSharing(2, *a, 40, 40, CacheSaltOf("tenant-b"));
  scheduler.Add(other.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:40*");
  EXPECT_EQ(other->num_cached_tokens, 0);
  auto same = MakeSharing(3, *a, 40, 40, CacheSaltOf("tenant-a"));
  scheduler.Add(same.get());
  // Two full blocks, and 7 of the 8 tokens a left in its third (the last is computed).
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:1* 3:1*");
  EXPECT_EQ(same->num_cached_tokens, 39);
}

TEST(SchedulerPrefixCacheTest, CancelledPrefillKeepsItsComputedFullBlocks) {
  BlockPool pool(32);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 20, .block_size = 16}, pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 100);
  scheduler.Add(a.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:20");
  EXPECT_EQ(Describe(runner.Step(scheduler)), "1:20");
  scheduler.Remove(a.get());  // cancelled mid-prefill: 40 tokens computed, 2 full blocks + 8
  EXPECT_EQ(pool.num_used(), 0);
  EXPECT_EQ(pool.num_cached(), 2);
  EXPECT_EQ(pool.num_partial(), 1);
  auto b = MakeSharing(2, *a, 100, 100);
  scheduler.Add(b.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:20");  // from token 40 on
  EXPECT_EQ(b->num_computed, 60);
  EXPECT_EQ(b->num_cached_tokens, 40);
  EXPECT_EQ(pool.num_partial(), 0);  // adopted: b writes on in that block
}

TEST(SchedulerPrefixCacheTest, SwitchedOffNothingIsShared) {
  BlockPool pool(32);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 100, .block_size = 16,
                       .enable_prefix_caching = false},
                      pool);
  FakeRunner runner;
  auto a = MakeSeq(1, 40);
  scheduler.Add(a.get());
  RunToCompletion(scheduler, runner, a.get(), 1);
  EXPECT_EQ(pool.num_cached(), 0);
  auto b = MakeSharing(2, *a, 40, 40);
  scheduler.Add(b.get());
  EXPECT_EQ(Describe(runner.Step(scheduler)), "2:40*");
  EXPECT_EQ(b->num_cached_tokens, 0);
}

// Under pressure the cache gives way: cached blocks nobody references are evicted, oldest
// first, before any running sequence is preempted.
TEST(SchedulerPrefixCacheTest, EvictsIdleCachedBlocksBeforePreempting) {
  BlockPool pool(6);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 100, .block_size = 16}, pool);
  FakeRunner runner;
  auto old_turn = MakeSeq(1, 48);
  scheduler.Add(old_turn.get());
  RunToCompletion(scheduler, runner, old_turn.get(), 1);  // 3 blocks cached, none in use
  auto big = MakeSeq(2, 90);  // 6 blocks: needs all of them
  scheduler.Add(big.get());
  StepPlan plan = runner.Step(scheduler);
  EXPECT_EQ(Describe(plan), "2:90*");
  EXPECT_TRUE(plan.preempted.empty());
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.num_cached(), 5);  // big's 5 full blocks; old_turn's were evicted
}

// Engine thread only: Add, Remove, Schedule and Update check their thread in debug builds.
TEST(SchedulerDeathTest, ScheduleOnAnotherThreadAborts) {
  TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE();
  BlockPool pool(8);
  Scheduler scheduler({.max_running = 4, .max_batched_tokens = 16, .block_size = 16}, pool);
  auto a = MakeSeq(1, 4);
  scheduler.Add(a.get());
  EXPECT_DEATH(testing::RunOnOtherThread([&] { scheduler.Schedule(); }),
               testing::kNotOnOwnerThread);
}

}  // namespace
}  // namespace troupe
