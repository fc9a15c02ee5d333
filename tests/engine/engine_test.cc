// End-to-end engine tests on real GGUF models: greedy outputs and logprobs against llama.cpp's
// golden files, batch invariance, cancellation, and request validation.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/synchronization/notification.h"
#include "engine/request/collecting_sink.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden_compare.h"
#include "tests/testing/greedy.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/testdata.h"

namespace troupe {
namespace {

using ::troupe::CollectingSink;

const std::string kStories = testing::StoriesPath();
const std::string kStoriesGolden = testing::StoriesGoldenPath();
const std::string kSmol = testing::SmolLmPath();
const std::string kStoriesF32KvGolden =
    std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/stories260K-f32kv-greedy.json";
const std::string kSmolGolden = std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/smollm2-greedy.json";
const std::string kSmolReference = std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/smollm2-f64-reference.json";

std::unique_ptr<Engine> MakeEngine(const std::string& model, int max_waiting = 64, int max_running = 32,
                                   KvCacheType kv_type = KvCacheType::kF16, bool prefix_caching = true) {
  EngineOptions options;
  options.enable_prefix_caching = prefix_caching;
  options.model_path = model;
  options.num_threads = 2;
  options.kv_cache_bytes = 64ll << 20;
  options.kv_cache_type = kv_type;
  options.max_waiting = max_waiting;
  options.max_running = max_running;
  auto engine = Engine::Create(options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

using Pending = testing::GreedyRun;
using testing::SubmitGreedy;

// Every golden case, alone: token ids equal llama.cpp's exactly, and the top-5 logprobs agree
// within `first_tolerance` at the first step (the prompt's prefill) and `tolerance` at the
// following decode steps of the golden file.
void ExpectMatchesGolden(const std::string& model, const std::string& golden_path, KvCacheType kv_type,
                         double first_tolerance, double tolerance) {
  auto engine = MakeEngine(model, 64, 32, kv_type);
  ASSERT_NE(engine, nullptr);
  nlohmann::json golden = testing::ReadJsonFile(golden_path);
  double max_error[2] = {0.0, 0.0};  // first step, later steps
  for (const auto& c : golden["cases"]) {
    std::vector<TokenId> prompt = c["prompt_tokens"].get<std::vector<TokenId>>();
    std::vector<TokenId> want = c["greedy_tokens"].get<std::vector<TokenId>>();
    Pending run = SubmitGreedy(*engine, prompt, static_cast<int>(want.size()), /*logprobs=*/5);
    run.sink->Wait();
    ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
    EXPECT_EQ(run.sink->tokens(), want) << "prompt: " << c["prompt"];
    std::vector<SampleResult> lps = run.sink->logprobs();
    const auto& steps = c["first_steps_top5_logprobs"];
    ASSERT_LE(steps.size(), lps.size());
    for (size_t s = 0; s < steps.size(); ++s) {
      const auto& top = steps[s]["top_logprobs"];
      const double tol = s == 0 ? first_tolerance : tolerance;
      ASSERT_EQ(lps[s].top.size(), top.size());
      for (size_t k = 0; k < top.size(); ++k) {
        // Near-ties may swap ranks; compare each golden entry with our logprob of that id.
        const int id = top[k][0].get<int>();
        const double want_lp = top[k][1].get<double>();
        auto it = std::find_if(lps[s].top.begin(), lps[s].top.end(),
                               [&](const TokenLogprob& t) { return t.id == id; });
        if (it == lps[s].top.end()) {
          // Only a near-tie at the edge of the top 5 may fall out of ours.
          EXPECT_NEAR(lps[s].top.back().logprob, want_lp, tol) << "step " << s << ": id " << id;
          continue;
        }
        EXPECT_NEAR(it->logprob, want_lp, tol) << "step " << s << " rank " << k;
        double& worst = max_error[s == 0 ? 0 : 1];
        worst = std::max(worst, std::abs(it->logprob - want_lp));
      }
    }
  }
  std::printf("max |logprob - golden| over %s: first step %.5f, later steps %.5f\n",
              golden_path.c_str(), max_error[0], max_error[1]);
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
}

// ../shared/golden was made with llama.cpp's defaults: f16 K/V and flash attention. troupe's
// default f16 cache follows that arithmetic (KvCacheType), so ids match exactly. Rounding the
// running sum to f16 after every key makes the last digits chaotic: llama.cpp 0.3.36 itself
// differs from the golden's build by 2.8e-4, and rounding our f32 Q/K/V in a different order
// moves single entries by 1e-3. Measured: first step 1.25e-3 (24 of 25 entries under 1e-3),
// later steps 3.8e-3; an f32 cache would be 5.3e-3 off at the first step.
TEST(EngineTest, Stories260KGreedyMatchesSharedGolden) {
  ExpectMatchesGolden(kStories, kStoriesGolden, KvCacheType::kF16, 1.5e-3, 6e-3);
}

// The same prompts through llama.cpp with an f32 KV cache and no flash attention
// (scripts/golden/make_f32kv_golden.py): troupe's f32 cache agrees within 1e-3 (measured 1e-5).
TEST(EngineTest, Stories260KMatchesLlamaCppF32Kv) {
  ExpectMatchesGolden(kStories, kStoriesF32KvGolden, KvCacheType::kF32, 1e-3, 1e-3);
}

// SmolLM2 Q4_1 against a float64 numpy forward pass of the same dequantized weights
// (scripts/golden/numpy_llama.py): the exact answer. Teacher-forced: step s of a case is a
// request whose prompt is the case's prompt plus the reference's first s greedy tokens, so
// every step is compared on the same context. troupe quantizes activations to 8 bits per
// 32-block for the integer dot products, as llama.cpp does; on this model that moves logprobs
// a lot: llama.cpp's own outputs (tests/testdata/smollm2-greedy.json) are up to 0.73 from the
// reference, and its greedy stream leaves the reference's at the first token of one case. We
// hold troupe to the same band: logprobs within 0.75, and the reference's top token must be
// ours wherever the reference is clear about it (top-1 ahead of top-2 by more than 1.5).
// With an f32 KV cache: the f16 cache's per-key rounding is one more perturbation this model
// amplifies (measured 0.62 with f16, 0.49 with f32), and what this test checks is the rest of
// the arithmetic; the f16 path is held to llama.cpp's own outputs below.
TEST(EngineTest, SmolLM2MatchesFloat64Reference) {
  constexpr double kTolerance = 0.75;
  constexpr double kClearMargin = 1.5;
  auto engine = MakeEngine(kSmol, 64, 32, KvCacheType::kF32);
  ASSERT_NE(engine, nullptr);
  nlohmann::json golden = testing::ReadJsonFile(kSmolReference);
  double max_error = 0.0;
  for (const auto& c : golden["cases"]) {
    std::vector<TokenId> context = c["prompt_tokens"].get<std::vector<TokenId>>();
    const auto& steps = c["first_steps_top5_logprobs"];
    for (size_t s = 0; s < steps.size(); ++s) {
      Pending run = SubmitGreedy(*engine, context, 1, /*logprobs=*/5);
      run.sink->Wait();
      ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
      std::vector<SampleResult> lps = run.sink->logprobs();
      ASSERT_EQ(lps.size(), 1u);
      const auto& top = steps[s]["top_logprobs"];
      const double margin = top[0][1].get<double>() - top[1][1].get<double>();
      if (margin > kClearMargin) {
        EXPECT_EQ(lps[0].id, top[0][0].get<int>()) << c["prompt"] << " step " << s;
      }
      for (const auto& entry : top) {
        auto it = std::find_if(lps[0].top.begin(), lps[0].top.end(),
                               [&](const TokenLogprob& t) { return t.id == entry[0].get<int>(); });
        if (it == lps[0].top.end()) continue;  // a near-tie at the edge of the top 5
        EXPECT_NEAR(it->logprob, entry[1].get<double>(), kTolerance) << c["prompt"] << " step " << s;
        max_error = std::max(max_error, std::abs(it->logprob - entry[1].get<double>()));
      }
      context.push_back(c["greedy_tokens"][s].get<TokenId>());
    }
  }
  std::printf("SmolLM2 vs float64 reference, teacher-forced: max |logprob error| %.4f\n", max_error);
}

// Against llama.cpp itself (tests/testdata/smollm2-greedy.json, its default settings). Both
// engines round activations to 8 bits, with slightly different float paths around them, so a
// greedy stream may part from llama.cpp's only where llama.cpp itself was nearly undecided:
// the streams must agree up to the first step whose top-2 logit gap is under 0.5, and the
// first step's logprobs must agree within 0.3 (llama.cpp's own f16-vs-f32 KV spread is 0.25).
TEST(EngineTest, SmolLM2AgreesWithLlamaCpp) {
  auto engine = MakeEngine(kSmol);
  ASSERT_NE(engine, nullptr);
  nlohmann::json golden = testing::ReadJsonFile(kSmolGolden);
  const int compared = testing::ExpectDecidedPrefixes(*engine, golden["cases"], 0.5, 0.3);
  std::printf("SmolLM2 vs llama.cpp: %d greedy tokens compared before a near-tie\n", compared);
  EXPECT_GE(compared, 10);  // the check must not pass vacuously (measured: 11)
}

// A request gives the same greedy tokens alone and inside a batch of 8 different requests.
TEST(EngineTest, BatchInvariantGreedy) {
  auto engine = MakeEngine(kSmol);
  ASSERT_NE(engine, nullptr);
  const Tokenizer& tok = engine->tokenizer();
  std::vector<std::string> texts = {
      "The capital of France is", "Once upon a time, a dragon", "1, 2, 3, 4,",
      "The best way to learn to cook is", "In the beginning", "My favourite colour is blue because",
      "def fibonacci(n):", "The weather today is"};
  std::vector<std::vector<TokenId>> alone;
  for (const auto& t : texts) {
    Pending run = SubmitGreedy(*engine, tok.Encode(t, tok.add_bos(), false), 24);
    run.sink->Wait();
    alone.push_back(run.sink->tokens());
  }
  std::vector<Pending> batch;
  for (const auto& t : texts) batch.push_back(SubmitGreedy(*engine, tok.Encode(t, tok.add_bos(), false), 24));
  for (size_t i = 0; i < texts.size(); ++i) {
    batch[i].sink->Wait();
    EXPECT_EQ(batch[i].sink->tokens(), alone[i]) << texts[i];
  }
}

// Prefix caching must never change an answer: a repeated prompt and a second turn built on the
// first (prompt + reply + new text) give the same greedy tokens as an engine without the
// cache, while reporting the reused prompt tokens.
TEST(EngineTest, PrefixCacheHitsGiveTheSameGreedyTokens) {
  auto cached = MakeEngine(kSmol);
  auto uncached = MakeEngine(kSmol, 64, 32, KvCacheType::kF16, /*prefix_caching=*/false);
  ASSERT_NE(cached, nullptr);
  ASSERT_NE(uncached, nullptr);
  const Tokenizer& tok = cached->tokenizer();
  std::vector<TokenId> turn1 = tok.Encode(
      "<|im_start|>system\nYou are Captain Mira, the weary but kind captain of a cargo ship that "
      "crosses the northern sea.<|im_end|>\n<|im_start|>user\nCaptain, how long until we reach "
      "the harbour?<|im_end|>\n<|im_start|>assistant\n",
      tok.add_bos(), /*parse_special=*/true);
  auto run = [&](Engine& engine, const std::vector<TokenId>& prompt) {
    Pending p = SubmitGreedy(engine, prompt, 24);
    p.sink->Wait();
    EXPECT_TRUE(p.sink->status().ok()) << p.sink->status();
    return std::make_pair(p.sink->tokens(), p.sink->completion().usage);
  };
  const auto [want1, usage_uncached] = run(*uncached, turn1);
  EXPECT_EQ(usage_uncached.cached_prompt_tokens, 0);
  const auto [first, usage_first] = run(*cached, turn1);
  EXPECT_EQ(first, want1);
  EXPECT_EQ(usage_first.cached_prompt_tokens, 0);  // a cold cache
  const auto [again, usage_again] = run(*cached, turn1);
  EXPECT_EQ(again, want1);
  const int full_blocks = (static_cast<int>(turn1.size()) - 1) / 16;
  EXPECT_EQ(usage_again.cached_prompt_tokens, full_blocks * 16);

  std::vector<TokenId> turn2 = turn1;
  turn2.insert(turn2.end(), want1.begin(), want1.end());
  const std::vector<TokenId> next = tok.Encode(
      "<|im_end|>\n<|im_start|>user\nAnd the storm?<|im_end|>\n<|im_start|>assistant\n",
      false, /*parse_special=*/true);
  turn2.insert(turn2.end(), next.begin(), next.end());
  const auto [want2, unused] = run(*uncached, turn2);
  const auto [got2, usage2] = run(*cached, turn2);
  EXPECT_EQ(got2, want2);
  // Everything the first turn computed comes from its blocks (full ones shared, the partly
  // filled last one adopted): its prompt and reply, but for the last reply token when it was
  // sampled and never fed back (max_tokens reached).
  const bool ended_at_eos = static_cast<int>(want1.size()) < 24;
  EXPECT_EQ(usage2.cached_prompt_tokens, static_cast<int>(turn1.size() + want1.size()) - (ended_at_eos ? 0 : 1));
  const EngineStats stats = cached->Stats();
  EXPECT_EQ(stats.prefix_cache_queries_total, static_cast<int64_t>(2 * turn1.size() + turn2.size()));
  EXPECT_EQ(stats.prefix_cache_hits_total, usage_again.cached_prompt_tokens + usage2.cached_prompt_tokens);
  EXPECT_EQ(stats.kv_blocks_used, 0);
}

// Under a KV budget too small for all sequences at once, the engine preempts (recomputing the
// victims later) and every stream still gets exactly the tokens an unconstrained run gives.
TEST(EngineTest, PreemptionUnderKvPressureNeverChangesAnAnswer) {
  auto roomy = MakeEngine(kStories);
  ASSERT_NE(roomy, nullptr);
  const Tokenizer& tok = roomy->tokenizer();
  const std::vector<std::string> texts = {"Once upon a time", "Lily and Ben", "The little dog",
                                          "One day, a girl", "Tom had a red ball", "The sun was hot",
                                          "A big bird flew", "Mom said"};
  std::vector<std::vector<TokenId>> prompts, want;
  for (const std::string& t : texts) {
    prompts.push_back(tok.Encode(t, tok.add_bos(), false));
    Pending p = SubmitGreedy(*roomy, prompts.back(), 90);
    p.sink->Wait();
    want.push_back(p.sink->tokens());
  }
  // 12 blocks of 16 tokens: room for about two of the eight ~97-token sequences at a time.
  const int64_t block_bytes = (64ll << 20) / roomy->Stats().kv_blocks_total;
  EngineOptions options;
  options.model_path = kStories;
  options.num_threads = 2;
  options.kv_cache_bytes = 12 * block_bytes;
  absl::StatusOr<std::unique_ptr<Engine>> tight = Engine::Create(options);
  ASSERT_TRUE(tight.ok()) << tight.status();
  ASSERT_EQ((*tight)->Stats().kv_blocks_total, 12);
  std::vector<Pending> runs;
  for (const auto& p : prompts) runs.push_back(SubmitGreedy(**tight, p, 90));
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].sink->Wait();
    ASSERT_TRUE(runs[i].sink->status().ok()) << runs[i].sink->status();
    EXPECT_EQ(runs[i].sink->tokens(), want[i]) << texts[i];
  }
  const EngineStats stats = (*tight)->Stats();
  EXPECT_GT(stats.num_preemptions, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
  std::printf("preemptions under a 12-block budget: %lld\n", static_cast<long long>(stats.num_preemptions));
}

TEST(EngineTest, CancelFreesBlocksAndFinishesOnce) {
  auto engine = MakeEngine(kStories);
  ASSERT_NE(engine, nullptr);
  Pending run = SubmitGreedy(*engine, {1, 403, 407, 261, 378}, 100);
  engine->Cancel(run.id);
  run.sink->Wait();
  EXPECT_EQ(run.sink->status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(run.sink->completion().finish_reason, FinishReason::kCancelled);
  // The consumer going away (Push returns false) cancels too.
  Request r;
  r.id = engine->NewRequestId();
  r.prompt = {1, 403, 407, 261, 378};
  r.sampling.temperature = 0;
  r.sampling.max_tokens = 100;
  auto quitter = std::make_shared<CollectingSink>(/*stop_after_tokens=*/3);
  r.sink = quitter;
  ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  quitter->Wait();
  EXPECT_EQ(quitter->completion().finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(quitter->tokens().size(), 3u);
  // Submit a marker request and wait for it: by then the engine has run the cancel's step.
  Pending marker = SubmitGreedy(*engine, {1, 403}, 1);
  marker.sink->Wait();
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
  EXPECT_EQ(run.sink->num_finishes(), 1);
  EXPECT_EQ(quitter->num_finishes(), 1);
}

TEST(EngineTest, RejectsBadRequestsWithClearErrors) {
  auto engine = MakeEngine(kStories);
  ASSERT_NE(engine, nullptr);
  const int limit = engine->model_info().max_model_len;
  Request r;
  r.sink = std::make_shared<CollectingSink>();
  absl::Status empty = engine->Submit(r);
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("empty"), std::string::npos);

  r.prompt.assign(limit, 1);
  absl::Status too_long = engine->Submit(r);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.message().find(std::to_string(limit - 1)), std::string::npos) << too_long;

  r.prompt = {1, 99999};
  EXPECT_EQ(engine->Submit(r).code(), absl::StatusCode::kInvalidArgument);

  r.prompt = {1, 2};
  r.sampling.top_p = 0.0f;
  EXPECT_EQ(engine->Submit(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(EngineTest, FullQueueIsResourceExhausted) {
  // One running sequence of 100 tokens, so the queue cannot drain while the loop submits.
  auto engine = MakeEngine(kStories, /*max_waiting=*/2, /*max_running=*/1);
  ASSERT_NE(engine, nullptr);
  std::vector<Pending> runs;
  int exhausted = 0;
  for (int i = 0; i < 50; ++i) {
    Request r;
    r.id = engine->NewRequestId();
    r.prompt = {1, 403, 407};
    r.sampling.temperature = 0;
    r.sampling.max_tokens = 100;
    r.sampling.ignore_eos = true;
    auto sink = std::make_shared<CollectingSink>();
    r.sink = sink;
    RequestId id = r.id;
    absl::Status s = engine->Submit(std::move(r));
    if (s.code() == absl::StatusCode::kResourceExhausted) {
      ++exhausted;
    } else {
      ASSERT_TRUE(s.ok()) << s;
      runs.push_back({sink, id});
    }
  }
  EXPECT_GE(exhausted, 47);  // at most 1 running + 2 queued are accepted
  for (Pending& run : runs) {
    engine->Cancel(run.id);
    run.sink->Wait();
  }
}

TEST(EngineTest, CorruptModelFailsToLoadWithClearError) {
  EngineOptions options;
  options.model_path = std::string(TROUPE_SOURCE_DIR) + "/does-not-exist.gguf";
  auto engine = Engine::Create(options);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("does-not-exist.gguf"), std::string::npos) << engine.status();
}

}  // namespace
}  // namespace troupe
