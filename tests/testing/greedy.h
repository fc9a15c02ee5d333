// Greedy requests against an engine (temperature 0, ignore_eos): SubmitGreedy queues one and
// hands back its sink; GreedyTokens also waits for its tokens. For tests that compare token
// sequences (and logprobs) between engines, runs or golden files. Test-thread only.
#pragma once

#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/request/collecting_sink.h"
#include "gtest/gtest.h"

namespace troupe::testing {

struct GreedyRun {
  std::shared_ptr<CollectingSink> sink;  // Wait() on it; finished at once if Submit failed
  RequestId id = 0;                      // for Engine::Cancel
};

// Submits `max_tokens` greedy tokens after `prompt`, with `logprobs` top entries per token
// (-1 = none). A refused Submit fails the test and finishes the sink with its status.
inline GreedyRun SubmitGreedy(Engine& engine, std::vector<TokenId> prompt, int max_tokens,
                              int logprobs = -1) {
  Request r;
  r.id = engine.NewRequestId();
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  r.sampling.logprobs = logprobs;
  GreedyRun run{.sink = std::make_shared<CollectingSink>(), .id = r.id};
  r.sink = run.sink;
  const absl::Status submitted = engine.Submit(std::move(r));
  EXPECT_TRUE(submitted.ok()) << submitted;
  if (!submitted.ok()) run.sink->Finish(submitted, Completion{});
  return run;
}

// The greedy tokens after `prompt`; a failed request fails the test.
inline std::vector<TokenId> GreedyTokens(Engine& engine, std::vector<TokenId> prompt,
                                         int max_tokens) {
  GreedyRun run = SubmitGreedy(engine, std::move(prompt), max_tokens);
  run.sink->Wait();
  EXPECT_TRUE(run.sink->status().ok()) << run.sink->status();
  return run.sink->tokens();
}

}  // namespace troupe::testing
