// cuda::Sample: greedy is the argmax with ties to the lower id; top-k / top-p / min-p never let
// a token outside their set through over many (seed, counter) draws; the empirical frequencies
// follow the renormalised distribution; a draw is the inverse CDF (in id order) at
// SampleUniform(seed, counter); and a row's token does not depend on its place in the batch.
// The allowed sets follow the CPU sampler's order (engine/sampler/sampler.h): top-k on the
// logits, softmax with temperature, top-p, then min-p relative to the best token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/sampling.h"
#include "tests/testing/cuda_testing.h"
#include "tests/testing/device_sampling.h"

namespace troupe {
namespace {

using cuda::SampleRowParams;
using testing::DeviceBuffer;
using testing::SampleOnDevice;
using testing::kOnCudaCpu;
using testing::Repetitions;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// `n_draws` draws from one row of logits with `base` params and counters 0, 1, 2, ...
std::vector<int32_t> DrawMany(const std::vector<float>& row, SampleRowParams base, int n_draws,
                              int rows_per_launch) {
  const int vocab = static_cast<int>(row.size());
  std::vector<float> rows(static_cast<size_t>(rows_per_launch) * vocab);
  for (int r = 0; r < rows_per_launch; ++r)
    std::copy(row.begin(), row.end(), rows.begin() + static_cast<size_t>(r) * vocab);
  const DeviceBuffer<float> d_rows(rows);
  std::vector<int32_t> ids;
  for (int first = 0; first < n_draws; first += rows_per_launch) {
    const int n = std::min(rows_per_launch, n_draws - first);
    std::vector<SampleRowParams> params(n, base);
    for (int i = 0; i < n; ++i) params[i].counter = base.counter + first + i;
    const std::vector<int32_t> got = SampleOnDevice(d_rows, params, vocab);
    ids.insert(ids.end(), got.begin(), got.end());
  }
  return ids;
}

// Argmax over non-NaN logits, ties to the lower id; 0 when every logit is NaN or -inf.
int32_t HostArgmax(const std::vector<float>& row) {
  int32_t best = -1;
  for (int32_t i = 0; i < static_cast<int32_t>(row.size()); ++i) {
    if (row[i] > -kInf && (best < 0 || row[i] > row[best])) best = i;
  }
  return best < 0 ? 0 : best;
}

// The tokens top-k / top-p / min-p keep from one row, in double. `strict` is the exact set;
// `loose` adds the tokens within the kernel's documented slack of a boundary: ties and
// near-ties (1e-6 of the best weight) at the k-th weight, 1e-3 of mass at the top-p boundary,
// 1e-5 relative at min_p. probs[i] is the renormalised probability over `strict`.
struct KeptSet {
  std::vector<bool> strict, loose;
  std::vector<double> probs;
  int strict_size = 0;
};

KeptSet HostKeptSet(const std::vector<float>& row, const SampleRowParams& p) {
  const int vocab = static_cast<int>(row.size());
  const double max_logit = row[HostArgmax(row)];
  std::vector<double> w(vocab);  // weight relative to the best: exp((l - max) / T)
  for (int i = 0; i < vocab; ++i) {
    w[i] = row[i] > -kInf ? std::exp((row[i] - max_logit) / p.temperature) : 0.0;
  }
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return w[a] > w[b]; });
  KeptSet set;
  set.strict.assign(vocab, true);
  set.loose.assign(vocab, true);
  for (int i = 0; i < vocab; ++i) {
    if (w[i] <= 0.0) set.strict[i] = set.loose[i] = false;
  }
  // 1) top-k (the k-th weight and ties at it).
  if (p.top_k > 0 && p.top_k < vocab) {
    const double kth = w[order[p.top_k - 1]];
    for (int i = 0; i < vocab; ++i) {
      set.strict[i] = set.strict[i] && w[i] >= kth;
      set.loose[i] = set.loose[i] && w[i] >= kth - 1e-6;
    }
  }
  // 2) top-p over what top-k kept: the best tokens while the mass before them is < top_p.
  if (p.top_p < 1.0f) {
    double total = 0.0;
    for (int i = 0; i < vocab; ++i) total += set.strict[i] ? w[i] : 0.0;
    double before = 0.0;
    for (int i : order) {
      if (!set.loose[i]) continue;
      const bool in_strict = set.strict[i];
      set.strict[i] = in_strict && before / total < p.top_p;
      set.loose[i] = before / total < p.top_p + 1e-3;
      if (in_strict) before += w[i];
    }
  }
  // 3) min-p relative to the best (which weighs 1).
  if (p.min_p > 0.0f) {
    for (int i = 0; i < vocab; ++i) {
      set.strict[i] = set.strict[i] && w[i] >= p.min_p;
      set.loose[i] = set.loose[i] && w[i] >= p.min_p * (1.0 - 1e-5);
    }
  }
  set.probs.assign(vocab, 0.0);
  double total = 0.0;
  for (int i = 0; i < vocab; ++i) total += set.strict[i] ? w[i] : 0.0;
  for (int i = 0; i < vocab; ++i) {
    if (!set.strict[i]) continue;
    set.probs[i] = w[i] / total;
    ++set.strict_size;
  }
  return set;
}

std::vector<float> RandomLogits(int vocab, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> row(vocab);
  for (float& x : row) x = normal(rng);
  return row;
}

std::string Describe(const SampleRowParams& p) {
  return "T=" + std::to_string(p.temperature) + " top_k=" + std::to_string(p.top_k) +
         " top_p=" + std::to_string(p.top_p) + " min_p=" + std::to_string(p.min_p);
}

TEST(SampleCudaTest, GreedyIsArgmaxWithTiesToTheLowerId) {
  TROUPE_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(1);
  for (int vocab : {111, 32000, 128256}) {
    SCOPED_TRACE("vocab=" + std::to_string(vocab));
    std::vector<std::vector<float>> rows;
    std::vector<SampleRowParams> params;
    auto add = [&](std::vector<float> row, SampleRowParams p) {
      rows.push_back(std::move(row));
      params.push_back(p);
    };
    const SampleRowParams greedy{.temperature = 0.0f};
    const SampleRowParams top1{.temperature = 1.0f, .top_k = 1, .seed = 5};
    for (int i = 0; i < 4; ++i) add(RandomLogits(vocab, 3.0f, rng), greedy);
    std::vector<float> tied = RandomLogits(vocab, 1.0f, rng);
    tied[vocab - 1] = tied[vocab / 2] = tied[3] = 50.0f;  // three-way tie: id 3 wins
    add(tied, greedy);
    add(tied, top1);
    std::vector<float> last = RandomLogits(vocab, 1.0f, rng);
    last[vocab - 1] = 30.0f;  // the best in the last thread's slice
    add(last, greedy);
    std::vector<float> with_nan = RandomLogits(vocab, 1.0f, rng);
    with_nan[0] = with_nan[vocab / 3] = kNaN;  // NaN never wins
    add(with_nan, greedy);
    std::vector<float> one_finite(vocab, -kInf);
    one_finite[vocab - 2] = -3.0f;  // the only finite logit: the stochastic path must pick it
    add(one_finite, SampleRowParams{.temperature = 0.7f, .seed = 9});
    add(one_finite, greedy);
    std::vector<float> tied_low(vocab, -1.0f);  // all equal: id 0
    add(tied_low, greedy);

    std::vector<float> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    const std::vector<int32_t> ids = SampleOnDevice(DeviceBuffer<float>(flat), params, vocab);
    for (size_t r = 0; r < rows.size(); ++r) {
      EXPECT_EQ(ids[r], HostArgmax(rows[r])) << "row " << r;
    }
  }
}

TEST(SampleCudaTest, NeverSamplesOutsideTopKTopPMinP) {
  TROUPE_SKIP_WITHOUT_CUDA();
  const SampleRowParams param_sets[] = {
      {.temperature = 1.0f, .top_k = 5},
      {.temperature = 0.7f, .top_k = 50},
      {.temperature = 1.0f, .top_p = 0.9f},
      {.temperature = 1.3f, .top_p = 0.5f},
      {.temperature = 1.0f, .min_p = 0.1f},
      {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f},
      {.temperature = 1.0f, .top_k = 1000, .top_p = 0.8f},
  };
  std::mt19937 rng(2);
  struct VocabRun {
    int vocab, draws, rows_per_launch;
  };
  for (const VocabRun& v : {VocabRun{111, Repetitions(20000, 100), 20000},
                            VocabRun{32000, Repetitions(4096, 8), 1024},
                            VocabRun{128256, Repetitions(2048, 4), 256}}) {
    for (SampleRowParams p : param_sets) {
      SCOPED_TRACE("vocab=" + std::to_string(v.vocab) + " " + Describe(p));
      p.seed = rng();
      const std::vector<float> row = RandomLogits(v.vocab, 2.5f, rng);
      const KeptSet kept = HostKeptSet(row, p);
      const std::vector<int32_t> ids = DrawMany(row, p, v.draws, v.rows_per_launch);
      int outside = 0, first_outside = -1;
      for (int32_t id : ids) {
        ASSERT_TRUE(id >= 0 && id < v.vocab) << "id " << id;
        if (!kept.loose[id]) {
          if (outside++ == 0) first_outside = id;
        }
      }
      EXPECT_EQ(outside, 0) << "of " << ids.size() << " draws; first id " << first_outside
                            << "; the allowed set has " << kept.strict_size << " tokens";
    }
  }
}

// A confident step: the best token is so far ahead that the k-th best weighs < 2^-24 of it.
// Top-k must still keep only k tokens, however small the others' weights are.
TEST(SampleCudaTest, TopKHoldsWhenTheKthWeightIsTiny) {
  TROUPE_SKIP_WITHOUT_CUDA();
  constexpr int kVocab = 128256;
  constexpr int kTopK = 50;
  std::mt19937 rng(3);
  // Without top-k, ~4e-3 of the draws (17 in 4096) would land outside it.
  std::vector<float> row(kVocab, -17.25f);  // weight e^-17.25 = 3.2e-8 each, 4e-3 together
  std::vector<bool> allowed(kVocab, false);
  std::uniform_int_distribution<int> id(0, kVocab - 1);
  row[1234] = 0.0f;
  allowed[1234] = true;
  for (int n = 1; n < kTopK;) {
    const int i = id(rng);
    if (allowed[i]) continue;
    allowed[i] = true;
    row[i] = -17.0f;  // weight e^-17 = 4.1e-8 < 2^-24
    ++n;
  }
  const std::vector<int32_t> ids = DrawMany(row, {.temperature = 1.0f, .top_k = kTopK, .seed = 77},
                                            Repetitions(4096, 32), 256);
  int outside = 0;
  for (int32_t i : ids) outside += allowed[i] ? 0 : 1;
  EXPECT_EQ(outside, 0) << "of " << ids.size() << " draws fell outside the top " << kTopK;
}

TEST(SampleCudaTest, FrequenciesMatchTheRenormalisedDistribution) {
  TROUPE_SKIP_WITHOUT_CUDA();
  if (kOnCudaCpu) {
    GTEST_SKIP() << "600k draws; on cuda_cpu, DrawIsTheInverseCdfAtSampleUniform checks each "
                    "draw exactly instead";
  }
  constexpr int kVocab = 111;
  constexpr int kDraws = 200000;
  std::mt19937 rng(4);
  const SampleRowParams param_sets[] = {
      {.temperature = 1.0f},
      {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .min_p = 0.02f},
      {.temperature = 1.5f, .top_p = 0.7f},
  };
  for (SampleRowParams p : param_sets) {
    SCOPED_TRACE(Describe(p));
    p.seed = rng();
    const std::vector<float> row = RandomLogits(kVocab, 1.5f, rng);
    const KeptSet kept = HostKeptSet(row, p);
    const std::vector<int32_t> ids = DrawMany(row, p, kDraws, 25000);
    std::vector<double> freq(kVocab, 0.0);
    for (int32_t i : ids) freq[i] += 1.0 / kDraws;
    double dot = 0.0, nf = 0.0, np = 0.0;
    for (int i = 0; i < kVocab; ++i) {
      dot += freq[i] * kept.probs[i];
      nf += freq[i] * freq[i];
      np += kept.probs[i] * kept.probs[i];
      EXPECT_TRUE(kept.loose[i] || freq[i] == 0.0) << "token " << i << " outside the set";
      // Binomial noise: 5 sigma, plus a little for tokens at a set boundary.
      const double sigma = std::sqrt(kept.probs[i] * (1.0 - kept.probs[i]) / kDraws);
      EXPECT_NEAR(freq[i], kept.probs[i], 5.0 * sigma + 2e-4) << "token " << i;
    }
    EXPECT_GT(dot / std::sqrt(nf * np), 0.99);
  }
}

TEST(SampleCudaTest, DrawIsTheInverseCdfAtSampleUniform) {
  TROUPE_SKIP_WITHOUT_CUDA();
  constexpr int kDraws = Repetitions(4096, 256);
  std::mt19937 rng(5);
  const SampleRowParams param_sets[] = {
      {.temperature = 1.0f, .seed = 11},
      {.temperature = 0.6f, .seed = 12},
      {.temperature = 0.9f, .top_k = 10, .seed = 13},
  };
  for (int vocab : {111, 1000}) {  // 1000: two tokens per thread slice
    for (const SampleRowParams& p : param_sets) {
      SCOPED_TRACE("vocab=" + std::to_string(vocab) + " " + Describe(p));
      const std::vector<float> row = RandomLogits(vocab, 1.5f, rng);
      const KeptSet kept = HostKeptSet(row, p);
      // The kernel's weights: expf((l - max) / T) in f32, kept tokens in id order.
      const float max_logit = row[HostArgmax(row)];
      std::vector<double> cum(vocab + 1, 0.0);
      for (int i = 0; i < vocab; ++i) {
        const double w = kept.strict[i] ? expf((row[i] - max_logit) * (1.0f / p.temperature)) : 0.0;
        cum[i + 1] = cum[i] + w;
      }
      const double total = cum[vocab];
      const std::vector<int32_t> ids = DrawMany(row, p, kDraws, kDraws);
      int compared = 0;
      for (int d = 0; d < kDraws; ++d) {
        const double u = cuda::SampleUniform(p.seed, p.counter + d) * total;
        const int want = std::min<int>(
            vocab - 1,
            static_cast<int>(std::upper_bound(cum.begin() + 1, cum.end(), u) - cum.begin() - 1));
        // Float prefix sums on the device: skip draws within 1e-5 of a token boundary.
        const double gap = std::min(std::fabs(u - cum[want]), std::fabs(cum[want + 1] - u));
        if (gap < 1e-5 * total) continue;
        ++compared;
        ASSERT_EQ(ids[d], want) << "draw " << d << " u/total " << u / total;
      }
      EXPECT_GT(compared, kDraws * 9 / 10);
    }
  }
}

// DrawTipsUnderPerturbation (tests/testing/device_sampling.h), which lets the engine test part
// two chains only at a near-tie: two live tokens whose boundary in the inverse CDF is placed
// 1e-4 from the draw's uniform tip under 0.05-logit noise; placed 0.2 away, they never do.
TEST(SampleCudaTest, PerturbationTipsADrawOnlyNearABoundary) {
  TROUPE_SKIP_WITHOUT_CUDA();
  constexpr int kVocab = 64;
  const SampleRowParams p{.temperature = 1.0f, .seed = 21, .counter = 3};
  const float u = cuda::SampleUniform(p.seed, p.counter);
  // Token 0 then token 1 in id order: token 0 is drawn when u < its probability q.
  auto two_tokens = [&](double q) {
    std::vector<float> row(kVocab, -kInf);
    row[0] = static_cast<float>(std::log(q / (1.0 - q)));
    row[1] = 0.0f;
    return row;
  };
  const double near = u + 1e-4, far = u < 0.5f ? u + 0.2 : u - 0.2;
  EXPECT_TRUE(testing::DrawTipsUnderPerturbation(two_tokens(near), p, 0.05f)) << "u " << u;
  EXPECT_FALSE(testing::DrawTipsUnderPerturbation(two_tokens(far), p, 0.05f)) << "u " << u;
  // The detector's own row is drawn as the sampler draws it.
  EXPECT_EQ(SampleOnDevice(DeviceBuffer<float>(two_tokens(far)), {p}, kVocab)[0], u < 0.5f ? 0 : 1);
}

TEST(SampleCudaTest, SameSeedAndCounterGiveTheSameTokenAnywhereInTheBatch) {
  TROUPE_SKIP_WITHOUT_CUDA();
  constexpr int kVocab = 32000;
  constexpr int kRows = 48;
  std::mt19937 rng(6);
  std::vector<std::vector<float>> rows;
  std::vector<SampleRowParams> params;
  for (int r = 0; r < kRows; ++r) {
    rows.push_back(RandomLogits(kVocab, 2.0f, rng));
    SampleRowParams p{
        .temperature = 0.5f + 0.05f * (r % 20), .seed = rng(), .counter = rng() % 1000};
    if (r % 3 == 1) p.top_k = 40;
    if (r % 4 == 2) p.top_p = 0.9f;
    if (r % 5 == 3) p.min_p = 0.05f;
    params.push_back(p);
  }
  auto run = [&](const std::vector<int>& order, int extra_rows) {
    std::vector<float> flat;
    std::vector<SampleRowParams> batch;
    for (int r : order) {
      flat.insert(flat.end(), rows[r].begin(), rows[r].end());
      batch.push_back(params[r]);
    }
    for (int e = 0; e < extra_rows; ++e) {  // other requests in the batch
      const std::vector<float> other = RandomLogits(kVocab, 2.0f, rng);
      flat.insert(flat.end(), other.begin(), other.end());
      batch.push_back({.temperature = 1.0f, .seed = rng(), .counter = 1});
    }
    const std::vector<int32_t> ids = SampleOnDevice(DeviceBuffer<float>(flat), batch, kVocab);
    std::vector<int32_t> by_row(kRows);
    for (size_t i = 0; i < order.size(); ++i) by_row[order[i]] = ids[i];
    return by_row;
  };
  std::vector<int> order(kRows);
  std::iota(order.begin(), order.end(), 0);
  const std::vector<int32_t> first = run(order, 0);
  std::shuffle(order.begin(), order.end(), rng);
  const std::vector<int32_t> second = run(order, 13);
  for (int r = 0; r < kRows; ++r) EXPECT_EQ(first[r], second[r]) << "row " << r;
}

}  // namespace
}  // namespace troupe
