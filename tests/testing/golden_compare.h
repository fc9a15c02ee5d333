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
#include "engine/sampler/sampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

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

}  // namespace troupe::testing
