// Comparing greedy chains and top-k logprobs with an oracle's golden file (llama.cpp's for the
// GGUF models, transformers' for the Hugging Face folders): the golden case format is
// {"prompt_tokens", "greedy_tokens", "top2_logit_gaps", "first_steps_top5_logprobs":
// [{"top_logprobs": [[id, logprob], ...]}]}. docs/testing.md explains the tolerances.
#pragma once

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "common/types.h"
#include "engine/engine.h"
#include "engine/sampler/sampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/greedy.h"

namespace troupe::testing {

// How close troupe must come to the oracle (nats for logprobs, logits for gaps).
struct Tolerance {
  double typical;     // bound on the median |logprob - the oracle's|
  double worst;       // bound on the largest one
  double tie_margin;  // top-2 logit gap below which a divergent greedy step is a tie
};

// Checks `got` against the oracle's chain. Returns the number of leading steps that are
// comparable: all of them, or the steps before a tolerated divergence (which is logged).
inline size_t ExpectSameGreedy(const std::vector<TokenId>& got,
                               const nlohmann::json& golden_case, const Tolerance& tolerance) {
  const auto want = golden_case["greedy_tokens"].get<std::vector<TokenId>>();
  EXPECT_EQ(got.size(), want.size());
  size_t step = 0;
  while (step < got.size() && step < want.size() && got[step] == want[step]) ++step;
  if (step == std::min(got.size(), want.size())) return step;
  const double gap = golden_case["top2_logit_gaps"][step].get<double>();
  if (gap < tolerance.tie_margin) {
    std::cerr << "note: chains part at step " << step << " of " << want.size()
              << ", a near-tie in the oracle (top-2 logit gap " << gap << ")\n";
  } else {
    ADD_FAILURE() << "greedy ids diverge from the oracle's at step " << step << ": got "
                  << got[step] << ", want " << want[step] << "; the oracle's top-2 logit gap there "
                  << gap << " (tie margin " << tolerance.tie_margin << ")";
  }
  return step;
}

// |logprob - the oracle's| over all compared top-5 entries of one model.
struct LogprobDiffs {
  std::vector<double> diffs;
  double worst = 0.0;
  std::string worst_at;
  std::string id_mismatches;
};

// Compares the top-5 of the first `num_steps` recorded steps with the oracle's, rank by rank,
// adding the differences to `out`. Ids must be equal at every rank but the last (a sixth token,
// which the golden file does not list, may swap into it) whose oracle logprob is not within
// `worst` of a neighbour's (a near-tie either side may order differently).
inline void CompareTopLogprobs(const std::vector<SampleResult>& got,
                               const nlohmann::json& steps, size_t num_steps, double worst,
                               const std::string& label, LogprobDiffs& out) {
  num_steps = std::min(num_steps, steps.size());
  ASSERT_GE(got.size(), num_steps);
  for (size_t s = 0; s < num_steps; ++s) {
    const auto& want = steps[s]["top_logprobs"];
    ASSERT_EQ(got[s].top.size(), want.size()) << "step " << s;
    for (size_t k = 0; k < want.size(); ++k) {
      const std::string at = label + " step " + std::to_string(s) + " rank " + std::to_string(k);
      const double lp = want[k][1].get<double>();
      const double diff = std::abs(got[s].top[k].logprob - lp);
      out.diffs.push_back(diff);
      if (diff > out.worst) {
        out.worst = diff;
        out.worst_at = at;
      }
      const bool tie_above = k > 0 && want[k - 1][1].get<double>() - lp < worst;
      const bool tie_below = k + 1 < want.size() && lp - want[k + 1][1].get<double>() < worst;
      if (k + 1 < want.size() && !tie_above && !tie_below &&
          got[s].top[k].id != want[k][0].get<TokenId>()) {
        out.id_mismatches += " " + at + ": " + std::to_string(got[s].top[k].id) + " vs " +
                             want[k][0].dump() + ";";
      }
    }
  }
}

inline void ExpectLogprobsNear(LogprobDiffs& d, const Tolerance& tolerance) {
  ASSERT_FALSE(d.diffs.empty());
  auto mid = d.diffs.begin() + d.diffs.size() / 2;
  std::nth_element(d.diffs.begin(), mid, d.diffs.end());
  EXPECT_LE(*mid, tolerance.typical) << "median |logprob - the oracle's| over " << d.diffs.size()
                                     << " top-5 entries";
  EXPECT_LE(d.worst, tolerance.worst) << "largest |logprob - the oracle's|, at " << d.worst_at;
  EXPECT_TRUE(d.id_mismatches.empty()) << "top-5 ids differ from the oracle's:" << d.id_mismatches;
}

// Every golden case greedily with top-5 logprobs, each alone and then all together (a ragged
// batch of prefills, then of decodes): the chains match the oracle's (ExpectSameGreedy) and the
// first steps' top-5 logprobs are within `tolerance` (ExpectLogprobsNear over all cases).
inline void ExpectGoldenCases(Engine& engine, const nlohmann::json& cases,
                              const Tolerance& tolerance) {
  LogprobDiffs diffs;
  for (const auto& c : cases) {
    const std::string label = "prompt of " + std::to_string(c["prompt_tokens"].size()) + " tokens";
    SCOPED_TRACE(label);
    GreedyRun run = SubmitGreedy(engine, c["prompt_tokens"].get<std::vector<TokenId>>(),
                                 static_cast<int>(c["greedy_tokens"].size()), /*logprobs=*/5);
    run.sink->Wait();
    ASSERT_TRUE(run.sink->status().ok()) << run.sink->status();
    const size_t same = ExpectSameGreedy(run.sink->tokens(), c, tolerance);
    // Step s's logprobs follow s identical tokens, so steps 0..same are comparable.
    CompareTopLogprobs(run.sink->logprobs(), c["first_steps_top5_logprobs"], same + 1,
                       tolerance.worst, label, diffs);
  }
  ExpectLogprobsNear(diffs, tolerance);

  std::vector<GreedyRun> batch;
  for (const auto& c : cases) {
    batch.push_back(SubmitGreedy(engine, c["prompt_tokens"].get<std::vector<TokenId>>(),
                                 static_cast<int>(c["greedy_tokens"].size())));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    SCOPED_TRACE("batched, case " + std::to_string(i));
    batch[i].sink->Wait();
    ASSERT_TRUE(batch[i].sink->status().ok()) << batch[i].sink->status();
    ExpectSameGreedy(batch[i].sink->tokens(), cases[i], tolerance);
  }
}

// For a real model whose chains an engine's rounding may part from the oracle's at a near-tie:
// each case's greedy ids must equal the oracle's up to the first step whose top-2 logit gap is
// under `decisive_gap`, and (if `logprob_tolerance` > 0) the first step's top-5 logprobs agree
// within it. Returns the tokens compared (a caller checks the check was not vacuous) and
// *worst_first_step gets the largest first-step |logprob| difference.
inline int ExpectDecidedPrefixes(Engine& engine, const nlohmann::json& cases, double decisive_gap,
                                 double logprob_tolerance, double* worst_first_step = nullptr) {
  int compared = 0;
  double worst = 0.0;
  for (const auto& c : cases) {
    const auto want = c["greedy_tokens"].get<std::vector<TokenId>>();
    const auto gaps = c["top2_logit_gaps"].get<std::vector<double>>();
    size_t decided = 0;
    while (decided < want.size() && gaps[decided] >= decisive_gap) ++decided;
    GreedyRun run = SubmitGreedy(engine, c["prompt_tokens"].get<std::vector<TokenId>>(),
                                 static_cast<int>(want.size()), /*logprobs=*/5);
    run.sink->Wait();
    EXPECT_TRUE(run.sink->status().ok()) << run.sink->status();
    const std::vector<TokenId> got = run.sink->tokens();
    EXPECT_EQ(got.size(), want.size());
    if (got.size() != want.size()) continue;
    EXPECT_EQ(std::vector<TokenId>(got.begin(), got.begin() + decided),
              std::vector<TokenId>(want.begin(), want.begin() + decided))
        << c.value("prompt", nlohmann::json()) << " (first " << decided << " tokens)";
    compared += static_cast<int>(decided);
    const std::vector<SampleResult> lps = run.sink->logprobs();
    EXPECT_FALSE(lps.empty());
    if (lps.empty()) continue;
    for (const auto& entry : c["first_steps_top5_logprobs"][0]["top_logprobs"]) {
      for (const TokenLogprob& t : lps[0].top) {
        if (t.id != entry[0].get<int>()) continue;
        worst = std::max(worst, std::abs(t.logprob - entry[1].get<double>()));
        if (logprob_tolerance > 0) {
          EXPECT_NEAR(t.logprob, entry[1].get<double>(), logprob_tolerance)
              << c.value("prompt", nlohmann::json());
        }
      }
    }
  }
  if (worst_first_step != nullptr) *worst_first_step = worst;
  return compared;
}

}  // namespace troupe::testing
