// Scheduler tests driven step by step by a fake runner that "computes" the planned tokens and
// appends one generated token to every sequence that reached its end (no model involved).
#include "engine/scheduler/scheduler.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace troupe {
namespace {

class FakeRunner {
 public:
  // Runs one step: Schedule, Update, then one new token per sampling sequence.
  StepPlan Step(Scheduler& scheduler) {
    StepPlan plan = scheduler.Schedule();
    scheduler.Update(plan);
    for (const ScheduledSeq& s : plan.seqs) {
      if (s.needs_logits) s.seq->tokens.push_back(1000 + s.seq->num_generated());
    }
    return plan;
  }
};

std::unique_ptr<Sequence> MakeSeq(RequestId id, int prompt_len, int priority = 0) {
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->priority = priority;
  seq->arrival_order = id;
  for (int i = 0; i < prompt_len; ++i) seq->tokens.push_back(i + 1);
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
  Scheduler scheduler({.max_running = 8, .max_batched_tokens = 100, .block_size = 16}, pool);
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

}  // namespace
}  // namespace troupe
