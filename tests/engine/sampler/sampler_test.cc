// Sampler and ValidateSamplingParams: greedy, seeded determinism, top-k/top-p/min-p, temperature,
// penalties, logprobs. Statistical checks use fixed seeds, so they are deterministic.
#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/thread_testing.h"

namespace troupe {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

SamplingParams Seeded(uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

// Logits whose softmax (T=1) is exactly `probs`.
std::vector<float> LogitsFor(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<double> Softmax(const std::vector<float>& logits, double temperature = 1.0) {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> out;
  double sum = 0.0;
  for (float v : logits) {
    out.push_back(std::exp((v - m) / temperature));
    sum += out.back();
  }
  for (double& v : out) v /= sum;
  return out;
}

// Draws `n` tokens from the same logits (fresh copy each time) and returns per-id counts.
std::vector<int> Histogram(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> row = logits;
    ++counts[sampler.Sample(row).id];
  }
  return counts;
}

std::vector<float> RandomLogits(size_t vocab, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& v : logits) v = dist(rng);
  return logits;
}

// ---- greedy and determinism ----

TEST(SamplerTest, GreedyPicksArgmax) {
  Sampler sampler(Greedy(), {});
  std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.4f};
  EXPECT_EQ(sampler.Sample(logits).id, 1);
  std::vector<float> big = RandomLogits(49152, 7);
  const auto want = std::max_element(big.begin(), big.end()) - big.begin();
  EXPECT_EQ(sampler.Sample(big).id, want);
}

TEST(SamplerTest, GreedyTiesGoToLowestIdAndSkipsNan) {
  Sampler sampler(Greedy(), {});
  std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(sampler.Sample(logits).id, 1);
  std::vector<float> with_nan = {std::nanf(""), 1.0f, kNegInf, 0.5f};
  EXPECT_EQ(sampler.Sample(with_nan).id, 1);
}

TEST(SamplerTest, SameSeedGivesSameSequence) {
  const std::vector<float> logits = RandomLogits(1000, 1, 1.0f);
  SamplingParams p = Seeded(1234);
  p.top_p = 0.9f;
  Sampler a(p, {});
  Sampler b(p, {});
  for (int i = 0; i < 200; ++i) {
    std::vector<float> ra = logits, rb = logits;
    ASSERT_EQ(a.Sample(ra).id, b.Sample(rb).id) << "draw " << i;
  }
}

TEST(SamplerTest, ReadOnlyRowGivesSameResultsAsMutableRow) {
  const std::vector<float> logits = RandomLogits(3000, 8, 2.0f);
  for (float repetition : {1.0f, 1.3f}) {
    SamplingParams p = Seeded(99);
    p.top_p = 0.9f;
    p.repetition_penalty = repetition;
    p.frequency_penalty = 0.5f * (repetition - 1.0f);
    p.logprobs = 3;
    const std::vector<TokenId> prompt = {1, 2, 3};
    Sampler a(p, prompt);
    Sampler b(p, prompt);
    for (int i = 0; i < 100; ++i) {
      std::vector<float> row = logits;
      const SampleResult ra = a.Sample(row);
      const SampleResult rb = b.SampleReadOnly(logits);
      ASSERT_EQ(ra.id, rb.id) << "draw " << i << " repetition " << repetition;
      ASSERT_EQ(ra.logprob, rb.logprob);
      ASSERT_EQ(ra.top.size(), rb.top.size());
      for (size_t j = 0; j < ra.top.size(); ++j) ASSERT_EQ(ra.top[j].id, rb.top[j].id);
    }
  }
}

TEST(SamplerTest, DifferentSeedsGiveDifferentSequences) {
  const std::vector<float> logits(16, 0.0f);  // uniform over 16 ids
  Sampler a(Seeded(1), {});
  Sampler b(Seeded(2), {});
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> ra = logits, rb = logits;
    differ += a.Sample(ra).id != b.Sample(rb).id;
  }
  // Independent uniform draws agree 1/16 of the time: expect ~187 differences.
  EXPECT_GT(differ, 150);
}

// The documented draw: u = (mt19937_64() >> 11) * 2^-53 scaled by the total weight, walked over
// ids in order. With 8 equal logits every weight is exactly 1, so the id is floor(8u), i.e. the
// top 3 bits of the engine's output: the same on every standard library.
TEST(SamplerTest, DrawMatchesDocumentedPortableUniform) {
  const std::vector<float> logits(8, 0.5f);
  Sampler sampler(Seeded(20261128), {});
  std::mt19937_64 reference(20261128);
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> row = logits;
    ASSERT_EQ(sampler.Sample(row).id, static_cast<TokenId>(reference() >> 61)) << "draw " << i;
  }
}

TEST(SamplerTest, UnfilteredDrawsFollowSoftmax) {
  const std::vector<double> probs = {0.4, 0.3, 0.2, 0.1};
  Sampler sampler(Seeded(42), {});
  const int n = 20000;
  const std::vector<int> counts = Histogram(sampler, LogitsFor(probs), n);
  for (size_t i = 0; i < probs.size(); ++i) {
    EXPECT_NEAR(counts[i] / double(n), probs[i], 0.015) << "id " << i;
  }
}

TEST(SamplerTest, TemperatureRescalesDistribution) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f};
  SamplingParams p = Seeded(5);
  p.temperature = 2.0f;
  Sampler sampler(p, {});
  const int n = 20000;
  const std::vector<int> counts = Histogram(sampler, logits, n);
  const std::vector<double> want = Softmax(logits, 2.0);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(counts[i] / double(n), want[i], 0.015) << "id " << i;
  }
}

TEST(SamplerTest, TinyTemperatureApproachesGreedy) {
  const std::vector<float> logits = RandomLogits(49152, 3);
  const TokenId argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();
  for (float t : {1e-3f, 1e-20f, 1e-40f}) {  // the last one's reciprocal overflows a float
    SamplingParams p = Seeded(9);
    p.temperature = t;
    Sampler sampler(p, {});
    for (int i = 0; i < 50; ++i) {
      std::vector<float> row = logits;
      ASSERT_EQ(sampler.Sample(row).id, argmax) << "temperature " << t;
    }
  }
}

TEST(SamplerTest, NegInfLogitsAreNeverDrawn) {
  std::vector<float> logits(100, kNegInf);
  logits[17] = 0.0f;
  logits[63] = 0.0f;
  logits[5] = std::nanf("");
  Sampler sampler(Seeded(11), {});
  const std::vector<int> counts = Histogram(sampler, logits, 1000);
  EXPECT_EQ(counts[17] + counts[63], 1000);
  EXPECT_GT(counts[17], 400);
  EXPECT_GT(counts[63], 400);
}

// ---- top-k, top-p, min-p ----

TEST(SamplerTest, TopKOneEqualsGreedy) {
  SamplingParams p = Seeded(3);
  p.top_k = 1;
  Sampler sampler(p, {});
  Sampler greedy(Greedy(), {});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<float> a = RandomLogits(5000, seed);
    std::vector<float> b = a;
    EXPECT_EQ(sampler.Sample(a).id, greedy.Sample(b).id);
  }
}

TEST(SamplerTest, TopKRestrictsToKBest) {
  const std::vector<float> logits = {0.0f, 5.0f, 1.0f, 4.0f, 3.0f, 2.0f};
  SamplingParams p = Seeded(8);
  p.top_k = 3;
  Sampler sampler(p, {});
  const int n = 10000;
  const std::vector<int> counts = Histogram(sampler, logits, n);
  EXPECT_EQ(counts[1] + counts[3] + counts[4], n);
  const std::vector<double> want = Softmax({5.0f, 4.0f, 3.0f});  // renormalised over the 3
  EXPECT_NEAR(counts[1] / double(n), want[0], 0.02);
  EXPECT_NEAR(counts[3] / double(n), want[1], 0.02);
  EXPECT_NEAR(counts[4] / double(n), want[2], 0.02);
}

TEST(SamplerTest, TopKOnLargeVocabWithTiesMatchesBruteForce) {
  // Logits rounded to 0.5 make thousands of ties; top-k breaks them by lower id.
  std::vector<float> logits = RandomLogits(49152, 12, 2.0f);
  for (float& v : logits) v = std::round(v * 2.0f) / 2.0f;
  logits[100] = kNegInf;
  logits[200] = std::nanf("");
  for (size_t k : {7u, 300u}) {
    std::vector<TokenId> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::erase_if(order, [&](TokenId id) { return !(logits[id] > kNegInf); });
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](TokenId a, TokenId b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    const std::set<TokenId> best(order.begin(), order.begin() + k);
    SamplingParams p = Seeded(k);
    p.top_k = static_cast<int>(k);
    p.temperature = 5.0f;  // flatten, so draws reach the boundary ids
    Sampler sampler(p, {});
    const std::vector<int> counts = Histogram(sampler, logits, 2000);
    int inside = 0;
    for (TokenId id : best) inside += counts[id];
    EXPECT_EQ(inside, 2000) << "k " << k;
  }
}

TEST(SamplerTest, TopPRestrictsToNucleus) {
  // Cumulative 0.5, 0.8, 0.95, 1.0: top_p = 0.7 keeps {0, 1}, renormalised to 0.625 / 0.375.
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams p = Seeded(21);
  p.top_p = 0.7f;
  Sampler sampler(p, {});
  const int n = 10000;
  const std::vector<int> counts = Histogram(sampler, LogitsFor(probs), n);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_NEAR(counts[0] / double(n), 0.625, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.375, 0.02);
}

TEST(SamplerTest, TopPOnLargeVocabMatchesFullSortNucleus) {
  // A flat-ish distribution over 49152 ids makes the nucleus span thousands of ids, which
  // exercises the doubling partial sort; the test computes the nucleus with a full sort.
  const std::vector<float> logits = RandomLogits(49152, 99, 1.0f);
  const std::vector<double> probs = Softmax(logits);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::set<TokenId> nucleus;
  double cum = 0.0;
  for (TokenId id : order) {
    nucleus.insert(id);
    cum += probs[id];
    if (cum >= 0.5) break;
  }
  ASSERT_GT(nucleus.size(), 1000u);
  SamplingParams p = Seeded(4);
  p.top_p = 0.5f;
  Sampler sampler(p, {});
  const std::vector<int> counts = Histogram(sampler, logits, 1000);
  int outside = 0;
  for (size_t id = 0; id < counts.size(); ++id) {
    if (counts[id] > 0 && !nucleus.contains(static_cast<TokenId>(id))) outside += counts[id];
  }
  // Only the boundary token can differ (float vs double sums); allow a handful of draws.
  EXPECT_LE(outside, 3);
}

TEST(SamplerTest, TopPTiesBreakByLowerId) {
  // 100 equal logits, top_p = 0.5: the nucleus is exactly ids 0..49.
  const std::vector<float> logits(100, 1.0f);
  SamplingParams p = Seeded(6);
  p.top_p = 0.5f;
  Sampler sampler(p, {});
  const std::vector<int> counts = Histogram(sampler, logits, 5000);
  for (int id = 50; id < 100; ++id) EXPECT_EQ(counts[id], 0) << "id " << id;
  for (int id = 0; id < 50; ++id) EXPECT_GT(counts[id], 0) << "id " << id;
}

TEST(SamplerTest, MinPExcludesTokensBelowFractionOfMax) {
  // p_max = 0.5, min_p = 0.2 -> threshold 0.1: ids 0..2 stay, id 3 (0.05) goes.
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams p = Seeded(13);
  p.min_p = 0.2f;
  Sampler sampler(p, {});
  const int n = 10000;
  const std::vector<int> counts = Histogram(sampler, LogitsFor(probs), n);
  EXPECT_EQ(counts[3], 0);
  EXPECT_NEAR(counts[0] / double(n), 0.5 / 0.95, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.15 / 0.95, 0.02);
}

TEST(SamplerTest, TopPAndMinPKeepTheShorterPrefix) {
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams p = Seeded(17);
  p.top_p = 0.9f;   // keeps {0, 1, 2}
  p.min_p = 0.5f;   // threshold 0.25 keeps {0, 1}
  Sampler sampler(p, {});
  std::vector<int> counts = Histogram(sampler, LogitsFor(probs), 5000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 1000);

  p.top_p = 0.6f;   // keeps {0, 1}
  p.min_p = 0.05f;  // threshold 0.025 keeps all
  Sampler sampler2(p, {});
  counts = Histogram(sampler2, LogitsFor(probs), 5000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 1000);
}

// High temperature spreads the kept set across the whole logit range (beyond the sampler's
// internal buckets), with min-p the shorter prefix and then top-p the shorter one.
TEST(SamplerTest, HighTemperatureFiltersMatchBruteForce) {
  std::vector<float> logits(3000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.02f * static_cast<float>(i);  // 0..-60
  const std::vector<double> probs = Softmax(logits, 50.0);
  for (const auto& [top_p, min_p] : {std::pair{0.99f, 0.5f}, std::pair{0.3f, 0.5f}}) {
    // Brute force: ids are already best first, so both filters keep a prefix [0, n).
    size_t n_top_p = 0;
    for (double cum = 0.0; cum < top_p; ++n_top_p) cum += probs[n_top_p];
    size_t n_min_p = 0;
    while (n_min_p < probs.size() && probs[n_min_p] >= min_p * probs[0]) ++n_min_p;
    const size_t n = std::min(n_top_p, n_min_p);
    SamplingParams p = Seeded(23);
    p.temperature = 50.0f;
    p.top_p = top_p;
    p.min_p = min_p;
    Sampler sampler(p, {});
    const int draws = 4000;
    const std::vector<int> counts = Histogram(sampler, logits, draws);
    double want_mass = 0.0;
    for (size_t i = 0; i < n; ++i) want_mass += probs[i];
    int outside = 0;
    for (size_t i = n + 1; i < counts.size(); ++i) outside += counts[i];  // allow the boundary id
    EXPECT_EQ(outside, 0) << "top_p " << top_p << " min_p " << min_p << " n " << n;
    // The first tenth of the kept ids gets its renormalised share of the draws.
    double head = 0.0;
    int head_draws = 0;
    for (size_t i = 0; i < n / 10; ++i) {
      head += probs[i] / want_mass;
      head_draws += counts[i];
    }
    EXPECT_NEAR(head_draws / double(draws), head, 0.03) << "top_p " << top_p;
  }
}

// ---- penalties ----

TEST(SamplerTest, RepetitionPenaltyChangesArgmax) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 1.5f;
  const std::vector<TokenId> prompt = {0, 7};
  {
    Sampler sampler(p, prompt);
    std::vector<float> logits = {2.0f, 1.8f, 0.0f};  // 2.0 / 1.5 = 1.33 < 1.8
    EXPECT_EQ(sampler.Sample(logits).id, 1);
    EXPECT_EQ(logits, (std::vector<float>{2.0f, 1.8f, 0.0f}));  // penalties undone on return
  }
  {
    Sampler sampler(p, prompt);
    std::vector<float> logits = {-1.0f, -1.2f, -5.0f};  // -1.0 * 1.5 = -1.5 < -1.2
    EXPECT_EQ(sampler.Sample(logits).id, 1);
  }
  {
    Sampler sampler(p, prompt);
    std::vector<float> logits = {2.0f, 1.2f, 0.0f};  // 1.33 > 1.2: still 0
    EXPECT_EQ(sampler.Sample(logits).id, 0);
  }
}

TEST(SamplerTest, PenaltyWindowIgnoresOlderTokens) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0f;
  p.penalty_last_n = 2;
  Sampler sampler(p, std::vector<TokenId>{0, 2, 2});  // id 0 is outside the last 2
  std::vector<float> logits = {2.0f, 1.8f, 0.0f};
  EXPECT_EQ(sampler.Sample(logits).id, 0);

  p.penalty_last_n = 0;  // penalties off
  Sampler off(p, std::vector<TokenId>{0});
  std::vector<float> logits2 = {2.0f, 1.8f};
  EXPECT_EQ(off.Sample(logits2).id, 0);
}

// Token 0 starts at logit 1.0 and is generated c times; token 1 sits just above or below the
// penalised value 1.0 - (0.25 c + presence), which pins the penalty to within 0.01.
TEST(SamplerTest, FrequencyPenaltyIsProportionalToOutputCount) {
  for (float presence : {0.0f, 0.3f}) {
    SamplingParams p = Greedy();
    p.frequency_penalty = 0.25f;
    p.presence_penalty = presence;
    p.penalty_last_n = -1;
    for (int c = 1; c <= 5; ++c) {
      for (float delta : {-0.01f, 0.01f}) {
        Sampler sampler(p, std::vector<TokenId>{0, 0, 0});  // prompt occurrences do not count
        for (int i = 0; i < c; ++i) sampler.Accept(0);
        const float penalised = 1.0f - (0.25f * c + presence);
        std::vector<float> logits = {1.0f, penalised + delta};
        EXPECT_EQ(sampler.Sample(logits).id, delta > 0 ? 1 : 0)
            << "count " << c << " presence " << presence << " delta " << delta;
      }
    }
  }
}

TEST(SamplerTest, SampledTokensFeedThePenalties) {
  SamplingParams p = Greedy();
  p.presence_penalty = 1.0f;
  Sampler sampler(p, {});
  // Without penalties greedy would repeat id 0; with presence 1.0 it alternates.
  std::vector<TokenId> got;
  for (int i = 0; i < 4; ++i) {
    std::vector<float> logits = {1.0f, 0.5f};
    got.push_back(sampler.Sample(logits).id);
  }
  EXPECT_EQ(got, (std::vector<TokenId>{0, 1, 0, 0}));  // after 0,1 both are penalised once
  EXPECT_EQ(sampler.num_generated(), 4);
}

// ---- logprobs ----

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  const std::vector<float> logits = RandomLogits(20, 31);
  const std::vector<double> probs = Softmax(logits);
  SamplingParams p = Seeded(77);
  p.temperature = 0.7f;            // must not affect the reported logprobs
  p.repetition_penalty = 1.3f;     // nor must penalties
  p.logprobs = 20;
  Sampler sampler(p, std::vector<TokenId>{3, 4, 5});
  for (int draw = 0; draw < 10; ++draw) {
    std::vector<float> row = logits;
    const SampleResult r = sampler.Sample(row);
    ASSERT_EQ(r.top.size(), 20u);
    double sum = 0.0;
    for (size_t i = 0; i < r.top.size(); ++i) {
      sum += std::exp(r.top[i].logprob);
      EXPECT_NEAR(r.top[i].logprob, std::log(probs[r.top[i].id]), 1e-5);
      if (i > 0) {
        EXPECT_GE(r.top[i - 1].logprob, r.top[i].logprob);
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_NEAR(r.logprob, std::log(probs[r.id]), 1e-5);
    const auto it = std::find_if(r.top.begin(), r.top.end(),
                                 [&](const TokenLogprob& t) { return t.id == r.id; });
    ASSERT_NE(it, r.top.end());
    EXPECT_EQ(it->logprob, r.logprob);
  }
}

TEST(SamplerTest, LogprobsTopNOnLargeVocab) {
  const std::vector<float> logits = RandomLogits(49152, 5);
  SamplingParams p = Greedy();
  p.logprobs = 5;
  Sampler sampler(p, {});
  std::vector<float> row = logits;
  const SampleResult r = sampler.Sample(row);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                    [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  ASSERT_EQ(r.top.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r.top[i].id, order[i]);
  EXPECT_EQ(r.id, order[0]);
  EXPECT_EQ(r.logprob, r.top[0].logprob);
  EXPECT_LT(r.logprob, 0.0f);
}

TEST(SamplerTest, LogprobsOffOrChosenOnly) {
  std::vector<float> logits = {0.0f, 0.0f};
  SamplingParams p = Greedy();
  Sampler none(p, {});
  EXPECT_TRUE(none.Sample(logits).top.empty());
  p.logprobs = 0;
  Sampler chosen(p, {});
  const SampleResult r = chosen.Sample(logits);
  EXPECT_TRUE(r.top.empty());
  EXPECT_NEAR(r.logprob, std::log(0.5), 1e-6);
}

// Scored ids get their raw log-softmax at every position, in the order asked, whatever the
// top-N setting; ids outside the vocabulary get -inf.
TEST(SamplerTest, ScoredTokenIdsReportTheirLogprobs) {
  const std::vector<float> logits = RandomLogits(300, 9);
  const std::vector<double> probs = Softmax(logits);
  SamplingParams p = Greedy();
  p.scored_token_ids = {250, 7, 7, 1000};
  Sampler sampler(p, {});
  std::vector<float> row = logits;
  const SampleResult r = sampler.Sample(row);
  EXPECT_TRUE(r.top.empty());
  ASSERT_EQ(r.scored.size(), 4u);
  EXPECT_EQ(r.scored[0].id, 250);
  EXPECT_NEAR(r.scored[0].logprob, std::log(probs[250]), 1e-5);
  EXPECT_NEAR(r.scored[1].logprob, std::log(probs[7]), 1e-5);
  EXPECT_EQ(r.scored[1].logprob, r.scored[2].logprob);
  EXPECT_EQ(r.scored[3].logprob, -std::numeric_limits<float>::infinity());
}

// ---- validation ----

// XTC by the book: of the tokens min-p keeps, those whose untempered probability (renormalised
// over the kept ones) reaches the threshold all go but the least likely, when there are two.
std::vector<double> ReferenceXtc(const std::vector<float>& logits, float temperature, float min_p,
                                 float threshold) {
  const std::vector<double> tempered = Softmax(logits, temperature);
  const double best = *std::max_element(tempered.begin(), tempered.end());
  std::vector<bool> kept(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) kept[i] = tempered[i] >= min_p * best;
  std::vector<double> plain = Softmax(logits);
  double kept_mass = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) kept_mass += kept[i] ? plain[i] : 0.0;
  std::vector<size_t> top;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (kept[i] && plain[i] / kept_mass >= threshold) top.push_back(i);
  }
  if (top.size() >= 2) {
    const size_t least = *std::min_element(top.begin(), top.end(), [&](size_t a, size_t b) {
      return plain[a] < plain[b] || (plain[a] == plain[b] && a > b);
    });
    for (size_t i : top) kept[i] = i == least;
  }
  std::vector<double> out(logits.size(), 0.0);
  double mass = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) mass += kept[i] ? tempered[i] : 0.0;
  for (size_t i = 0; i < logits.size(); ++i) out[i] = kept[i] ? tempered[i] / mass : 0.0;
  return out;
}

TEST(SamplerTest, XtcMatchesTheReferenceOnFixedLogits) {
  std::mt19937 rng(23);
  for (int trial = 0; trial < 12; ++trial) {
    std::vector<float> logits(12);
    for (float& v : logits) v = static_cast<float>(rng() % 400) / 100.0f;
    const float temperature = trial % 3 == 0 ? 1.0f : 0.7f + 0.2f * static_cast<float>(trial % 4);
    const float min_p = trial % 2 == 0 ? 0.0f : 0.1f;
    const float threshold = 0.05f + 0.03f * static_cast<float>(trial % 5);
    SamplingParams p = Seeded(100 + trial);
    p.temperature = temperature;
    p.min_p = min_p;
    p.xtc_probability = 1.0f;
    p.xtc_threshold = threshold;
    Sampler sampler(p, {});
    const int n = 20000;
    const std::vector<int> counts = Histogram(sampler, logits, n);
    const std::vector<double> want = ReferenceXtc(logits, temperature, min_p, threshold);
    for (size_t i = 0; i < logits.size(); ++i) {
      if (want[i] == 0.0) {
        EXPECT_EQ(counts[i], 0) << "trial " << trial << " id " << i;
      } else {
        EXPECT_NEAR(counts[i] / double(n), want[i], 0.015) << "trial " << trial << " id " << i;
      }
    }
  }
}

TEST(SamplerTest, XtcActsWithItsProbabilityAndNeedsTwoTopChoices) {
  // probs 0.5, 0.3, 0.15, 0.05 and threshold 0.1: 0.5 and 0.3 go, 0.15 stays. With probability
  // 0.5, half the draws follow softmax and half draw from {0.15, 0.05}.
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams p = Seeded(29);
  p.xtc_probability = 0.5f;
  p.xtc_threshold = 0.1f;
  Sampler sampler(p, {});
  const int n = 40000;
  std::vector<int> counts = Histogram(sampler, LogitsFor(probs), n);
  EXPECT_NEAR(counts[0] / double(n), 0.5 * 0.5, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.5 * 0.15 + 0.5 * 0.75, 0.015);
  // Only one token reaches 0.4: nothing is removed.
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.4f;
  Sampler one(p, {});
  counts = Histogram(one, LogitsFor(probs), n);
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.015);
  // Above 0.5 XTC is off, and greedy never applies it.
  p.xtc_threshold = 0.6f;
  Sampler off(p, {});
  counts = Histogram(off, LogitsFor(probs), n);
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.015);
  p.xtc_threshold = 0.1f;
  p.temperature = 0.0f;
  Sampler greedy(p, {});
  EXPECT_EQ(Histogram(greedy, LogitsFor(probs), 100)[0], 100);
}

TEST(SamplingParamsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams()).ok());
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repetition_penalty = 10.0f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.logprobs = 20;
  p.penalty_last_n = -1;
  p.stop = std::vector<std::string>(16, std::string(256, 'x'));
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
}

TEST(SamplingParamsTest, RejectsOutOfRangeFieldsByName) {
  struct Case {
    void (*mutate)(SamplingParams&);
    std::string want;  // substring of the message
  };
  const std::vector<Case> cases = {
      {[](SamplingParams& p) { p.temperature = 100.5f; }, "temperature must be in [0, 100]"},
      {[](SamplingParams& p) { p.temperature = -0.1f; }, "temperature must be in [0, 100]"},
      {[](SamplingParams& p) { p.temperature = std::nanf(""); }, "temperature"},
      {[](SamplingParams& p) { p.top_k = -1; }, "top_k must be >= 0, got -1"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0"},
      {[](SamplingParams& p) { p.top_p = 1.01f; }, "top_p must be in (0, 1]"},
      {[](SamplingParams& p) { p.min_p = -0.1f; }, "min_p must be in [0, 1]"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty must be in (0, 10]"},
      {[](SamplingParams& p) { p.repetition_penalty = 11.0f; }, "repetition_penalty must be in (0, 10], got 11"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty must be in [-2, 2]"},
      {[](SamplingParams& p) { p.frequency_penalty = -3.0f; }, "frequency_penalty must be in [-2, 2]"},
      {[](SamplingParams& p) { p.penalty_last_n = -2; }, "penalty_last_n must be >= -1"},
      {[](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens must be >= 1, got 0"},
      {[](SamplingParams& p) { p.logprobs = 21; }, "logprobs must be in [-1, 20], got 21"},
      {[](SamplingParams& p) { p.logprobs = -2; }, "logprobs must be in [-1, 20]"},
      // 16 from the client (checked where requests are converted) + 4 the server adds.
      {[](SamplingParams& p) { p.stop = std::vector<std::string>(21, "x"); }, "stop must have at most 20 strings, got 21"},
      {[](SamplingParams& p) { p.stop = {"ok", ""}; }, "stop[1] must be 1..256 bytes long, got 0"},
      {[](SamplingParams& p) { p.stop = {std::string(257, 'y')}; }, "stop[0] must be 1..256 bytes"},
      {[](SamplingParams& p) { p.dry_multiplier = -1.0f; }, "dry_multiplier must be in [0, 100]"},
      {[](SamplingParams& p) { p.dry_multiplier = std::nanf(""); }, "dry_multiplier"},
      {[](SamplingParams& p) { p.dry_base = 0.9f; }, "dry_base must be in [1, 10], got 0.9"},
      {[](SamplingParams& p) { p.dry_allowed_length = 0; }, "dry_allowed_length must be in [1, 1024], got 0"},
      {[](SamplingParams& p) { p.dry_allowed_length = 1025; }, "dry_allowed_length must be in [1, 1024]"},
      {[](SamplingParams& p) { p.dry_penalty_last_n = -2; }, "dry_penalty_last_n must be >= -1"},
      {[](SamplingParams& p) { p.dry_sequence_breakers = std::vector<std::string>(17, ":"); },
       "dry_sequence_breakers must have at most 16 strings, got 17"},
      {[](SamplingParams& p) { p.dry_sequence_breakers = {"\n", ""}; },
       "dry_sequence_breakers[1] must be 1..32 bytes long, got 0"},
      {[](SamplingParams& p) { p.xtc_probability = 1.5f; }, "xtc_probability must be in [0, 1]"},
      {[](SamplingParams& p) { p.xtc_threshold = -0.1f; }, "xtc_threshold must be in [0, 1]"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status s = ValidateSamplingParams(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << "got: " << s.message();
  }
}

// Engine thread only: a request's sampler binds to the thread that first samples with it.
TEST(SamplerDeathTest, SampleOnAnotherThreadAborts) {
  TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE();
  Sampler sampler(Greedy(), {});
  std::vector<float> logits = {0.0f, 1.0f};
  ASSERT_EQ(sampler.Sample(logits).id, 1);
  EXPECT_DEATH(testing::RunOnOtherThread([&] { sampler.Accept(0); }), testing::kNotOnOwnerThread);
}

}  // namespace
}  // namespace troupe
