// Faults on the engine thread: an exception inside one request's work ends that request with
// kInternal and frees its KV blocks, a failed batched step ends the requests of that step, and
// the engine goes on serving the others and new ones. The faults come from a sink that throws
// (the engine's own boundary) and from EngineOptions::fault_hooks_for_testing; the model is the
// real stories260K.
#include <algorithm>
#include <atomic>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/request/collecting_sink.h"
#include "gtest/gtest.h"
#include "tests/testing/greedy.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

using testing::GreedyRun;
using testing::SubmitGreedy;

const std::vector<TokenId> kPrompt = {1, 403, 407, 261, 378};
constexpr int kMaxTokens = 24;

std::unique_ptr<Engine> MakeEngine(EngineFaultHooks hooks = {}) {
  EngineOptions options;
  options.model_path = testing::StoriesPath();
  options.num_threads = 2;
  options.kv_cache_bytes = 16ll << 20;
  options.fault_hooks_for_testing = std::move(hooks);
  auto engine = Engine::Create(options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

// Collects like CollectingSink, but its Push throws std::out_of_range (what a `.at` past the end
// throws) at the `throw_at`-th token, as a faulty consumer of the engine's output would.
class ThrowingSink : public CollectingSink {
 public:
  explicit ThrowingSink(int throw_at) : throw_at_(throw_at) {}
  bool Push(TokenDelta delta) override {
    if (++num_pushes_ == throw_at_) throw std::out_of_range("sink index 7 out of range");
    return CollectingSink::Push(std::move(delta));
  }

 private:
  const int throw_at_;
  int num_pushes_ = 0;  // engine thread only
};

// After every request finished: a new request is served, and every KV block is back.
void ExpectServesAfterwards(Engine& engine, const std::vector<TokenId>& want) {
  GreedyRun after = SubmitGreedy(engine, kPrompt, kMaxTokens);
  after.sink->Wait();
  ASSERT_TRUE(after.sink->status().ok()) << after.sink->status();
  EXPECT_EQ(after.sink->tokens(), want);
  EXPECT_EQ(engine.Stats().kv_blocks_used, 0);
  EXPECT_EQ(engine.Stats().num_running, 0);
}

TEST(EngineFaultsTest, ASinkThatThrowsEndsOnlyItsRequest) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  const std::vector<TokenId> want = testing::GreedyTokens(*engine, kPrompt, kMaxTokens);
  ASSERT_EQ(want.size(), static_cast<size_t>(kMaxTokens));

  std::vector<GreedyRun> others;
  for (int i = 0; i < 3; ++i) others.push_back(SubmitGreedy(*engine, kPrompt, kMaxTokens));
  Request r;
  r.id = engine->NewRequestId();
  r.prompt = kPrompt;
  r.sampling.temperature = 0;
  r.sampling.max_tokens = kMaxTokens;
  r.sampling.ignore_eos = true;
  auto thrower = std::make_shared<ThrowingSink>(/*throw_at=*/3);
  r.sink = thrower;
  ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  for (int i = 0; i < 3; ++i) others.push_back(SubmitGreedy(*engine, kPrompt, kMaxTokens));

  thrower->Wait();
  EXPECT_EQ(thrower->status().code(), absl::StatusCode::kInternal) << thrower->status();
  EXPECT_NE(thrower->status().message().find("sink index 7 out of range"), std::string::npos)
      << thrower->status();
  EXPECT_EQ(thrower->completion().finish_reason, FinishReason::kError);
  EXPECT_EQ(thrower->tokens().size(), 2u);  // the two pushes before the throw
  for (GreedyRun& run : others) {
    run.sink->Wait();
    ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
    EXPECT_EQ(run.sink->tokens(), want);
    EXPECT_EQ(run.sink->num_finishes(), 1);
  }
  EXPECT_EQ(thrower->num_finishes(), 1);
  ExpectServesAfterwards(*engine, want);
}

TEST(EngineFaultsTest, AllocationFailureInOneRequestsSamplingEndsOnlyIt) {
  std::atomic<RequestId> victim{0};
  EngineFaultHooks hooks;
  hooks.before_sample = [&victim](const Request& request) {
    if (request.id == victim.load()) throw std::bad_alloc();
  };
  auto engine = MakeEngine(std::move(hooks));
  ASSERT_NE(engine, nullptr);
  const std::vector<TokenId> want = testing::GreedyTokens(*engine, kPrompt, kMaxTokens);

  victim = engine->NewRequestId() + 2;  // the second of the ids below
  std::vector<GreedyRun> runs;
  for (int i = 0; i < 5; ++i) runs.push_back(SubmitGreedy(*engine, kPrompt, kMaxTokens));
  ASSERT_EQ(runs[1].id, victim.load());
  for (GreedyRun& run : runs) {
    run.sink->Wait();
    if (run.id == victim.load()) {
      EXPECT_EQ(run.sink->status().code(), absl::StatusCode::kInternal) << run.sink->status();
      EXPECT_NE(run.sink->status().message().find("bad_alloc"), std::string::npos) << run.sink->status();
      EXPECT_TRUE(run.sink->tokens().empty());
    } else {
      ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
      EXPECT_EQ(run.sink->tokens(), want);
    }
    EXPECT_EQ(run.sink->num_finishes(), 1);
  }
  ExpectServesAfterwards(*engine, want);
}

TEST(EngineFaultsTest, AFailedBatchEndsTheRequestsOfThatStepAndTheEngineGoesOn) {
  // The first forward pass that carries the victim throws; the hook records that batch.
  std::atomic<RequestId> victim{0};
  absl::Mutex mu;
  std::vector<RequestId> failed_batch;  // guarded by mu
  bool thrown = false;                  // guarded by mu
  EngineFaultHooks hooks;
  hooks.before_forward = [&](std::span<const RequestId> batch) {
    absl::MutexLock lock(&mu);
    if (thrown || std::find(batch.begin(), batch.end(), victim.load()) == batch.end()) return;
    thrown = true;
    failed_batch.assign(batch.begin(), batch.end());
    throw std::runtime_error("forward pass failed");
  };
  auto engine = MakeEngine(std::move(hooks));
  ASSERT_NE(engine, nullptr);
  const std::vector<TokenId> want = testing::GreedyTokens(*engine, kPrompt, kMaxTokens);

  std::vector<GreedyRun> runs;
  for (int i = 0; i < 2; ++i) runs.push_back(SubmitGreedy(*engine, kPrompt, kMaxTokens));
  victim = engine->NewRequestId() + 1;
  for (int i = 0; i < 3; ++i) runs.push_back(SubmitGreedy(*engine, kPrompt, kMaxTokens));
  ASSERT_EQ(runs[2].id, victim.load());
  for (GreedyRun& run : runs) run.sink->Wait();

  std::vector<RequestId> batch;
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(thrown);
    batch = failed_batch;
  }
  EXPECT_NE(std::find(batch.begin(), batch.end(), runs[2].id), batch.end());
  for (GreedyRun& run : runs) {
    const bool in_batch = std::find(batch.begin(), batch.end(), run.id) != batch.end();
    if (in_batch) {
      EXPECT_EQ(run.sink->status().code(), absl::StatusCode::kInternal) << run.sink->status();
      EXPECT_NE(run.sink->status().message().find("forward pass failed"), std::string::npos)
          << run.sink->status();
    } else {
      ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
      EXPECT_EQ(run.sink->tokens(), want);
    }
    EXPECT_EQ(run.sink->num_finishes(), 1);
  }
  ExpectServesAfterwards(*engine, want);
}

}  // namespace
}  // namespace troupe
