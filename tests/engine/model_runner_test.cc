// ModelRunner on the CPU backend and stories260K, without an engine or a scheduler: the tests
// build each step's plan by hand, so they pin down what the runner itself does (flatten the
// plan into tokens, positions, KV slots and block tables; return one logits row per sampling
// entry, in plan order).
#include "engine/model_runner.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "engine/backend/backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/gguf_model.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/testdata.h"
#include "tests/testing/thread_testing.h"

namespace troupe {
namespace {

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;

TokenId Argmax(std::span<const float> row) {
  return static_cast<TokenId>(std::max_element(row.begin(), row.end()) - row.begin());
}

float MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// A sequence holding `tokens` in the given KV blocks (enough of them for `capacity` tokens).
Sequence MakeSeq(RequestId id, std::vector<TokenId> tokens, std::vector<BlockId> blocks) {
  Sequence seq;
  seq.id = id;
  seq.tokens = std::move(tokens);
  seq.num_prompt_tokens = seq.num_tokens();
  seq.blocks = std::move(blocks);
  return seq;
}

// Blocks first, first + 1, ...: `n` of them.
std::vector<BlockId> Blocks(BlockId first, int n) {
  std::vector<BlockId> blocks(n);
  std::iota(blocks.begin(), blocks.end(), first);
  return blocks;
}

// One plan entry computing the next `n` tokens of seq; it samples when they reach its end.
ScheduledSeq Entry(Sequence& seq, int n) {
  return {.seq = &seq, .num_tokens = n, .needs_logits = seq.num_computed + n == seq.num_tokens()};
}

StepPlan Plan(std::vector<ScheduledSeq> entries) {
  StepPlan plan;
  for (const ScheduledSeq& e : entries) plan.num_tokens += e.num_tokens;
  plan.seqs = std::move(entries);
  return plan;
}

// What the scheduler's Update does after a step.
void Advance(const StepPlan& plan) {
  for (const ScheduledSeq& e : plan.seqs) e.seq->num_computed += e.num_tokens;
}

class ModelRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = testing::OpenGgufModel(testing::StoriesPath());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new testing::GgufModel(std::move(*model));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(model_, nullptr) << "stories260K did not load";
    BackendOptions options{.device = "cpu",
                           .num_threads = 2,
                           .kv = {.num_blocks = kNumBlocks, .block_size = kBlockSize,
                                  .type = KvCacheType::kF16}};
    auto backend = CreateBackend(options, model_->config, model_->weights, model_->file.get());
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    runner_ = std::make_unique<ModelRunner>(*backend_, kBlockSize, vocab(), dim());
  }

  static int vocab() { return model_->config.vocab_size; }
  static int dim() { return model_->config.dim; }

  // Runs one step and advances the plan's sequences; returns a copy of the logits.
  std::vector<float> Step(const StepPlan& plan, bool want_hidden = false) {
    std::span<float> logits = runner_->Run(plan, {}, want_hidden);
    Advance(plan);
    return std::vector<float>(logits.begin(), logits.end());
  }

  // Prefills seq in chunks of at most `chunk` tokens, then decodes greedily until it holds
  // `num_generated` new tokens; returns them.
  std::vector<TokenId> Greedy(Sequence& seq, int chunk, int num_generated) {
    std::vector<TokenId> out;
    while (static_cast<int>(out.size()) < num_generated) {
      const StepPlan plan = Plan({Entry(seq, std::min(chunk, seq.num_uncomputed()))});
      const std::vector<float> logits = Step(plan);
      if (!plan.seqs[0].needs_logits) {
        EXPECT_TRUE(logits.empty());
        continue;
      }
      EXPECT_EQ(logits.size(), static_cast<size_t>(vocab()));
      out.push_back(Argmax(logits));
      seq.tokens.push_back(out.back());
    }
    return out;
  }

  static inline testing::GgufModel* model_ = nullptr;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelRunner> runner_;
};

// One prefill step, then one decode step per token: llama.cpp's greedy ids, exactly (the
// engine test checks the same golden through the whole engine).
TEST_F(ModelRunnerTest, PrefillThenDecodeMatchesLlamaCppGreedy) {
  const nlohmann::json golden = testing::ReadJsonFile(testing::StoriesGoldenPath());
  ASSERT_FALSE(golden["cases"].empty());
  for (const auto& c : golden["cases"]) {
    const auto prompt = c["prompt_tokens"].get<std::vector<TokenId>>();
    const auto want = c["greedy_tokens"].get<std::vector<TokenId>>();
    const int total = static_cast<int>(prompt.size() + want.size());
    Sequence seq = MakeSeq(1, prompt, Blocks(0, (total + kBlockSize - 1) / kBlockSize));
    EXPECT_EQ(Greedy(seq, /*chunk=*/total, static_cast<int>(want.size())), want) << c["prompt"];
  }
}

// A prompt prefilled in chunks that straddle block boundaries (16 + 2, 7 + 7 + 4) continues
// exactly as when it is prefilled at once: the chunks find the earlier chunks' K/V by
// position and block table.
TEST_F(ModelRunnerTest, ChunkedPrefillContinuesLikeOnePrefill) {
  std::vector<TokenId> prompt = {1, 403, 407, 261, 378, 260, 322, 411, 379, 263,
                                 290, 267, 313, 406, 307, 299, 285, 300};
  ASSERT_EQ(prompt.size(), 18u);
  Sequence whole = MakeSeq(1, prompt, Blocks(0, 3));
  const std::vector<TokenId> want = Greedy(whole, /*chunk=*/18, 20);
  for (int chunk : {16, 7, 1}) {
    Sequence chunked = MakeSeq(2, prompt, Blocks(10, 3));
    EXPECT_EQ(Greedy(chunked, chunk, 20), want) << "chunk " << chunk;
  }
}

// Block ids are only names: a sequence in scattered, out-of-order blocks computes the very
// same logits as in blocks 0, 1, 2 (the runner's slot = block * block_size + offset).
TEST_F(ModelRunnerTest, ScatteredBlocksGiveIdenticalLogits) {
  const std::vector<TokenId> prompt = {1, 403, 407, 261, 378, 260, 322, 411, 379, 263,
                                       290, 267, 313, 406, 307, 299, 285, 300, 261, 378};
  Sequence dense = MakeSeq(1, prompt, Blocks(0, 2));
  Sequence scattered = MakeSeq(2, prompt, {41, 7});
  EXPECT_EQ(Step(Plan({Entry(dense, 20)})), Step(Plan({Entry(scattered, 20)})));
  // And the decode step that reads them back.
  dense.tokens.push_back(290);
  scattered.tokens.push_back(290);
  EXPECT_EQ(Step(Plan({Entry(dense, 1)})), Step(Plan({Entry(scattered, 1)})));
}

// Sequences batched into one step each get the logits they get alone, one row per sampling
// entry in plan order; an entry mid-prefill adds no row.
TEST_F(ModelRunnerTest, BatchReturnsOneRowPerSamplingEntryInPlanOrder) {
  const std::vector<TokenId> a_prompt = {1, 403, 407, 261, 378};
  const std::vector<TokenId> b_prompt = {1, 290, 267, 313, 406, 307, 299};
  const std::vector<TokenId> c_prompt = {1, 322, 411, 379, 263, 290, 267, 313, 406, 307};
  Sequence a_alone = MakeSeq(1, a_prompt, {0});
  Sequence b_alone = MakeSeq(2, b_prompt, {1});
  const std::vector<float> a_want = Step(Plan({Entry(a_alone, 5)}));
  const std::vector<float> b_want = Step(Plan({Entry(b_alone, 7)}));

  Sequence a = MakeSeq(3, a_prompt, {2});
  Sequence c = MakeSeq(4, c_prompt, {3});  // 4 of its 10 tokens: no logits yet
  Sequence b = MakeSeq(5, b_prompt, {4});
  const StepPlan plan = Plan({Entry(b, 7), Entry(c, 4), Entry(a, 5)});
  ASSERT_FALSE(plan.seqs[1].needs_logits);
  const std::vector<float> got = Step(plan);
  ASSERT_EQ(got.size(), 2u * vocab());
  const std::span<const float> rows(got);
  // Batched matmuls may sum in another order than a single row's; the choice must not move.
  EXPECT_LT(MaxAbsDiff(rows.subspan(0, vocab()), b_want), 1e-3f);
  EXPECT_LT(MaxAbsDiff(rows.subspan(vocab(), vocab()), a_want), 1e-3f);
  EXPECT_EQ(Argmax(rows.subspan(0, vocab())), Argmax(b_want));
  EXPECT_EQ(Argmax(rows.subspan(vocab(), vocab())), Argmax(a_want));
  EXPECT_EQ(c.num_computed, 4);
}

// hidden(): the final-norm state of each sampling row, [rows, dim], only when asked for.
TEST_F(ModelRunnerTest, HiddenStatesOnlyWhenWanted) {
  Sequence a = MakeSeq(1, {1, 403, 407}, {0});
  Sequence b = MakeSeq(2, {1, 261, 378, 260}, {1});
  Step(Plan({Entry(a, 3), Entry(b, 4)}), /*want_hidden=*/true);
  ASSERT_EQ(runner_->hidden().size(), 2u * dim());
  EXPECT_TRUE(std::any_of(runner_->hidden().begin(), runner_->hidden().end(),
                          [](float v) { return v != 0.0f; }));
  const std::vector<float> first(runner_->hidden().begin(), runner_->hidden().begin() + dim());
  const std::vector<float> second(runner_->hidden().begin() + dim(), runner_->hidden().end());
  EXPECT_NE(first, second);

  a.tokens.push_back(261);
  Step(Plan({Entry(a, 1)}), /*want_hidden=*/false);
  EXPECT_TRUE(runner_->hidden().empty());
}

// Engine thread only: the runner binds to the thread that first runs it (debug builds).
using ModelRunnerDeathTest = ModelRunnerTest;

TEST_F(ModelRunnerDeathTest, RunOnAnotherThreadAborts) {
  TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE();
  Sequence seq = MakeSeq(1, {1, 403, 407}, {0});
  Step(Plan({Entry(seq, 2)}));
  EXPECT_DEATH(testing::RunOnOtherThread([&] { runner_->Run(Plan({Entry(seq, 1)})); }),
               testing::kNotOnOwnerThread);
}

}  // namespace
}  // namespace troupe
