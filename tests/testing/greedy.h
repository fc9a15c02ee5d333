// GreedyTokens: submits one greedy request (ignore_eos) to an engine and waits for its tokens.
// For tests that compare token sequences between engines or runs.
#pragma once

#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/request/collecting_sink.h"
#include "gtest/gtest.h"

namespace troupe::testing {

inline std::vector<TokenId> GreedyTokens(Engine& engine, std::vector<TokenId> prompt,
                                         int max_tokens) {
  Request r;
  r.id = engine.NewRequestId();
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  auto sink = std::make_shared<CollectingSink>();
  r.sink = sink;
  const absl::Status submitted = engine.Submit(std::move(r));
  EXPECT_TRUE(submitted.ok()) << submitted;
  if (!submitted.ok()) return {};
  sink->Wait();
  EXPECT_TRUE(sink->status().ok()) << sink->status();
  return sink->tokens();
}

}  // namespace troupe::testing
