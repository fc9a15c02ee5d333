// Sampler: penalties -> DRY -> (argmax | top-k -> softmax(T) -> top-p -> min-p -> XTC ->
// seeded draw).
// Engine thread only. See docs/sampling.md.
#include "engine/sampler/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "common/thread_owner.h"
#include "kernels/cpu/simd.h"

namespace troupe {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
using Candidate = std::pair<float, TokenId>;

// ---- helpers: exp weights, lane-wise reductions, partition ----
// e^x and the lane-split sum are kernels/cpu/simd.h's (FastExpNonPositive, LaneSum).

// Reductions keep kLanes independent accumulators combined in a fixed order: they vectorize
// without reassociation and give the same result on every run.
constexpr size_t kLanes = cpu::kVec16Lanes;

// Largest non-NaN value; -inf if there is none.
float MaxIgnoringNan(std::span<const float> x) {
  float acc[kLanes];
  std::fill(acc, acc + kLanes, kNegInf);
  size_t i = 0;
  for (; i + kLanes <= x.size(); i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  }
  float m = kNegInf;
  for (; i < x.size(); ++i) m = x[i] > m ? x[i] : m;
  for (float a : acc) m = a > m ? a : m;
  return m;
}

// out[i] = e^((x[i] - max) * scale), 0 for NaN and -inf; returns sum(out) in double.
// REQUIRES: max >= every non-NaN x[i]; scale > 0 and finite; out.size() == x.size().
double ExpWeights(std::span<const float> x, float max, float scale, std::span<float> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = cpu::FastExpNonPositive((x[i] - max) * scale);
  return cpu::LaneSum<double>(out.data(), static_cast<int64_t>(out.size()));
}

// Strict total order: larger value first, ties by lower id. Every selection below therefore has
// exactly one right answer.
inline bool BetterFirst(const Candidate& a, const Candidate& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// One Lomuto partition of c[lo, hi) around its middle element, in our own code so the resulting
// order (which the draw walks) is the same on every standard library. Branch-free: every element
// is swapped with the boundary slot and the boundary advances by the comparison's result, which
// avoids a misprediction per element on random data. Returns the pivot's final index m:
// c[lo, m) are better than the pivot, c(m, hi) worse. Adds the weight of c[lo, m) to
// *better_weight. REQUIRES: lo < hi.
size_t PartitionAroundMiddle(std::vector<Candidate>& c, size_t lo, size_t hi,
                             double* better_weight) {
  std::swap(c[lo + (hi - lo) / 2], c[hi - 1]);
  const Candidate pivot = c[hi - 1];
  size_t store = lo;
  double weight = 0.0;
  for (size_t i = lo; i + 1 < hi; ++i) {
    // Invariant: c[lo, store) better than the pivot, c[store, i) not.
    const Candidate x = c[i];
    const bool better = BetterFirst(x, pivot);
    c[i] = c[store];
    c[store] = x;
    store += better ? 1 : 0;
    weight += better ? x.first : 0.0f;
  }
  std::swap(c[store], c[hi - 1]);
  *better_weight += weight;
  return store;
}

// Buckets by distance from the max logit, 1/32 nat wide; the last one holds everything 32 nats
// or more below the max. Better candidates never land in a later bucket, so a histogram pass
// finds the bucket that holds the top-k / top-p boundary and only that bucket needs a select.
constexpr int kNumBuckets = 1024;
constexpr float kBucketsPerNat = 32.0f;
// Dropped ids count into one of kDropSlots extra slots chosen by id, so that the histogram
// pass has no branch and no long store-to-load chain through a single counter.
constexpr int kDropSlots = 8;

inline int DropSlot(size_t id) { return kNumBuckets + static_cast<int>(id % kDropSlots); }

// REQUIRES: logit <= max_logit, or NaN / -inf (those land in the last bucket).
inline int BucketOf(float logit, float max_logit) {
  const float d = (max_logit - logit) * kBucketsPerNat;  // >= 0, +inf or NaN
  // Clamp on the bits: for non-negative floats the bit order is the value order, and NaN and
  // +inf sort above 1023. Integer ops keep the loop branch-free and the conversion defined.
  constexpr uint32_t kLastBits = std::bit_cast<uint32_t>(static_cast<float>(kNumBuckets - 1));
  return static_cast<int>(std::bit_cast<float>(std::min(std::bit_cast<uint32_t>(d), kLastBits)));
}

// c ? a : b with both sides computed: a conditional that guards float ops is not if-converted
// under -ftrapping-math without AVX-512 masking, so AVX2 builds would keep a branch.
inline int SelectInt(bool c, int a, int b) { return b ^ ((a ^ b) & -static_cast<int>(c)); }

// Not NaN and not -inf, tested on the bits so that it vectorizes.
inline bool Drawable(float v) {
  const uint32_t b = std::bit_cast<uint32_t>(v);
  return ((b & 0x7FFFFFFFu) <= 0x7F800000u) & (b != 0xFF800000u);
}

uint64_t SeedFor(const SamplingParams& params) {
  if (params.seed.has_value()) return *params.seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

}  // namespace

// ---- public ----

Sampler::Sampler(const SamplingParams& params, std::span<const TokenId> prompt,
                 std::shared_ptr<const BreakerTokens> dry_breakers)
    : params_(params), dry_breakers_(std::move(dry_breakers)), rng_(SeedFor(params)) {
  // The longer of the two windows; -1 means the whole prompt.
  const auto window = [&prompt](int last_n) {
    return last_n < 0 ? prompt.size() : std::min(prompt.size(), static_cast<size_t>(last_n));
  };
  const size_t keep = std::max(window(params_.penalty_last_n),
                               params_.dry_multiplier > 0.0f ? window(params_.dry_penalty_last_n) : 0);
  history_.assign(prompt.end() - static_cast<std::ptrdiff_t>(keep), prompt.end());
  num_prompt_ = keep;
}

SampleResult Sampler::Sample(std::span<float> logits) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(!logits.empty());
  SampleResult result;
  double raw_lse = 0.0;
  if (WantsLogprobs()) raw_lse = RawLogSumExp(logits, &result);
  ApplyPenalties(logits);
  const TokenId id = Choose(logits);
  RestoreLogits(logits);
  return Record(logits, id, std::move(result), raw_lse);
}

SampleResult Sampler::SampleReadOnly(std::span<const float> logits) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(!logits.empty());
  SampleResult result;
  double raw_lse = 0.0;
  if (WantsLogprobs()) raw_lse = RawLogSumExp(logits, &result);
  if (!PenaltiesActive()) return Record(logits, Choose(logits), std::move(result), raw_lse);
  row_.assign(logits.begin(), logits.end());
  ApplyPenalties(row_);
  return Record(logits, Choose(row_), std::move(result), raw_lse);
}

TokenId Sampler::Choose(std::span<const float> penalised) {
  // top_k == 1 keeps exactly the argmax, so it is greedy too (and draws no random number).
  const bool greedy = params_.temperature == 0.0f || params_.top_k == 1;
  return greedy ? Argmax(penalised) : SampleStochastic(penalised);
}

SampleResult Sampler::Record(std::span<const float> raw, TokenId id, SampleResult result,
                             double raw_lse) {
  result.id = id;
  if (params_.logprobs >= 0) {
    result.logprob = raw[id] > kNegInf ? static_cast<float>(raw[id] - raw_lse) : kNegInf;
  }
  history_.push_back(id);
  return result;
}

void Sampler::Accept(TokenId id) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  history_.push_back(id);
}

// ---- logprobs ----

double Sampler::RawLogSumExp(std::span<const float> logits, SampleResult* result) {
  const float max_logit = MaxIgnoringNan(logits);
  // Best params_.logprobs raw logits, kept sorted best first; an equal later id never displaces
  // an earlier one, so ties go to the lower id.
  const size_t n = std::min(static_cast<size_t>(std::max(params_.logprobs, 0)), logits.size());
  std::vector<TokenLogprob>& top = result->top;
  top.reserve(n);
  float floor = kNegInf;  // top.back().logprob once top is full: only larger values enter
  for (size_t i = 0; n > 0 && i < logits.size(); ++i) {
    const float v = logits[i];
    if (top.size() == n ? !(v > floor) : std::isnan(v)) continue;
    auto pos = std::find_if(top.begin(), top.end(),
                            [v](const TokenLogprob& t) { return t.logprob < v; });
    top.insert(pos, TokenLogprob{static_cast<TokenId>(i), v});
    if (top.size() > n) top.pop_back();
    if (top.size() == n) floor = top.back().logprob;
  }
  if (!(max_logit > kNegInf) || !std::isfinite(max_logit)) {
    // Degenerate row (all -inf/NaN, or +inf present): report -inf rather than NaN.
    for (TokenLogprob& t : top) t.logprob = kNegInf;
    for (TokenId id : params_.scored_token_ids) result->scored.push_back({id, kNegInf});
    return std::numeric_limits<double>::infinity();
  }
  weights_.resize(logits.size());
  const double lse = max_logit + std::log(ExpWeights(logits, max_logit, 1.0f, weights_));
  for (TokenLogprob& t : top) {
    t.logprob = t.logprob > kNegInf ? static_cast<float>(t.logprob - lse) : kNegInf;
  }
  for (TokenId id : params_.scored_token_ids) {
    const bool valid = id >= 0 && static_cast<size_t>(id) < logits.size() && logits[id] > kNegInf;
    result->scored.push_back({id, valid ? static_cast<float>(logits[id] - lse) : kNegInf});
  }
  return lse;
}

// ---- penalties ----

// Repetition (llama.cpp/HF): every id seen in the window, prompt or output, has a positive
// logit divided by the penalty and a negative one multiplied by it. Presence/frequency
// (OpenAI): ids generated c > 0 times in the window lose frequency * c + presence.
bool Sampler::RepetitionActive() const {
  const bool any = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                   params_.frequency_penalty != 0.0f;
  return any && params_.penalty_last_n != 0 && !history_.empty();
}

bool Sampler::DryActive() const {
  return params_.dry_multiplier > 0.0f && params_.dry_penalty_last_n != 0 && history_.size() >= 2;
}

void Sampler::ApplyPenalties(std::span<float> logits) {
  saved_.clear();
  if (RepetitionActive()) ApplyRepetitionPenalties(logits);
  if (DryActive()) ApplyDry(logits);
}

void Sampler::ApplyRepetitionPenalties(std::span<float> logits) {
  const size_t vocab = logits.size();
  if (counts_.size() != vocab) counts_.assign(vocab, 0);
  size_t window = history_.size();
  if (params_.penalty_last_n > 0) {
    window = std::min(window, static_cast<size_t>(params_.penalty_last_n));
  }
  touched_.clear();
  for (size_t pos = history_.size() - window; pos < history_.size(); ++pos) {
    const TokenId id = history_[pos];
    if (id < 0 || static_cast<size_t>(id) >= vocab) continue;  // not in this model's vocab
    if (counts_[id] == 0) {
      counts_[id] = 1;
      touched_.push_back(id);
    }
    if (pos >= num_prompt_) ++counts_[id];
  }

  const float rep = params_.repetition_penalty;
  for (TokenId id : touched_) {
    float v = logits[id];
    saved_.emplace_back(id, v);
    if (rep != 1.0f) v = v > 0.0f ? v / rep : v * rep;
    const int num_output = counts_[id] - 1;
    if (num_output > 0) {
      v -= params_.frequency_penalty * static_cast<float>(num_output) + params_.presence_penalty;
    }
    logits[id] = v;
    counts_[id] = 0;  // leave counts_ all zero for the next call
  }
}

// DRY after the other penalties, as in llama.cpp's chain: over the last dry_penalty_last_n
// tokens of prompt + output.
void Sampler::ApplyDry(std::span<float> logits) {
  size_t window = history_.size();
  if (params_.dry_penalty_last_n > 0) {
    window = std::min(window, static_cast<size_t>(params_.dry_penalty_last_n));
  }
  DryPenalties(std::span<const TokenId>(history_).last(window), dry_breakers_.get(), params_,
               &dry_scratch_, &dry_penalties_);
  for (const auto& [id, penalty] : dry_penalties_) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;  // not in this vocab
    saved_.emplace_back(id, logits[id]);
    logits[id] -= penalty;
  }
}

void Sampler::RestoreLogits(std::span<float> logits) {
  // Backwards: an id both penalties touched was saved twice, its original value first.
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) logits[it->first] = it->second;
}

// XTC (exclude top choices, as in llama.cpp and koboldcpp): the untempered probabilities of the
// candidates (e^(logit - max) renormalised over them, since llama.cpp applies temperature
// last); one uniform draw decides whether to act, made only when there are two candidates.
bool Sampler::XtcActive() const {
  return params_.xtc_probability > 0.0f && params_.xtc_threshold <= 0.5f;
}

void Sampler::ApplyXtc(std::span<const float> logits, float max_logit) {
  if (!XtcActive() || candidates_.size() < 2) return;
  if (Uniform01() >= params_.xtc_probability) return;
  xtc_mass_.resize(candidates_.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    xtc_mass_[i] = cpu::FastExpNonPositive(logits[candidates_[i].second] - max_logit);
    total += xtc_mass_[i];
  }
  const double threshold = static_cast<double>(params_.xtc_threshold) * total;
  // The least likely candidate at or above the threshold (ties: the later in BetterFirst's
  // order, the higher id) stays; the others at or above it go.
  size_t above = 0;
  size_t keep = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (xtc_mass_[i] < threshold) continue;
    if (above == 0 || BetterFirst(candidates_[keep], candidates_[i])) keep = i;
    ++above;
  }
  if (above < 2) return;
  size_t out = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (xtc_mass_[i] >= threshold && i != keep) continue;
    candidates_[out++] = candidates_[i];
  }
  candidates_.resize(out);
}

// ---- selection ----

TokenId Sampler::Argmax(std::span<const float> logits) const {
  const float m = MaxIgnoringNan(logits);
  if (!(m > kNegInf)) return 0;  // every logit is -inf or NaN
  // First index holding the max: ties go to the lowest id.
  return static_cast<TokenId>(std::find(logits.begin(), logits.end(), m) - logits.begin());
}

double Sampler::Uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void Sampler::SelectTopK(size_t lo, size_t k) {
  size_t hi = candidates_.size();
  const size_t target = k - 1;  // index of the k-th best
  double unused = 0.0;
  while (lo < hi) {
    const size_t m = PartitionAroundMiddle(candidates_, lo, hi, &unused);
    if (m == target) break;
    if (m > target) {
      hi = m;
    } else {
      lo = m + 1;
    }
  }
  candidates_.resize(k);
}

// Quickselect on mass instead of rank. Invariant: candidates_[0, lo) are kept and better than
// everything in [lo, hi); [hi, n) are dropped; `need` is the weight still missing from [lo, hi).
void Sampler::ApplyTopP(size_t lo, double need) {
  size_t hi = candidates_.size();
  while (lo < hi) {
    double better = 0.0;
    const size_t m = PartitionAroundMiddle(candidates_, lo, hi, &better);
    if (better >= need) {
      hi = m;  // the boundary lies strictly among the better ones
    } else if (better + candidates_[m].first >= need) {
      lo = m + 1;  // the pivot is the last token the nucleus needs
      break;
    } else {
      need -= better + candidates_[m].first;
      lo = m + 1;
    }
  }
  candidates_.resize(lo);  // lo == hi only if rounding left `need` unmet: keep what is left
}

float Sampler::DropThreshold(double total_weight, size_t n) const {
  float threshold = params_.min_p;  // the best candidate weighs exactly 1
  if (params_.top_p < 1.0f) {
    const double top_p_floor = 0.5 * (1.0 - params_.top_p) * total_weight / static_cast<double>(n);
    threshold = std::max(threshold, static_cast<float>(top_p_floor));
  }
  return threshold;
}

void Sampler::CollectBuckets(std::span<const float> values, int last, size_t num_front,
                             size_t num_last) {
  // Every kept id is written to both the front and the tail cursor, and each cursor advances
  // only when the id belongs to it (the +1 slots absorb the stray writes): no branch to
  // mispredict on ids near the boundary.
  candidates_.resize(num_front + num_last + 1);
  tail_.resize(num_last + 1);
  size_t front = 0;
  size_t tail = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const int b = bucket_of_[i];
    if (b > last) continue;  // most ids, when the boundary is near the top
    const Candidate c{values[i], static_cast<TokenId>(i)};
    candidates_[front] = c;
    front += b < last ? 1 : 0;
    tail_[tail] = c;
    tail += b == last ? 1 : 0;
  }
  TROUPE_CHECK(front == num_front && tail == num_last);  // once per call: cheap
  std::copy(tail_.begin(), tail_.begin() + num_last, candidates_.begin() + num_front);
  candidates_.resize(num_front + num_last);
}

void Sampler::SelectTopKLogits(std::span<const float> logits, float max_logit, size_t k) {
  bucket_of_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {  // vectorizes
    bucket_of_[i] = static_cast<uint16_t>(
        SelectInt(Drawable(logits[i]), BucketOf(logits[i], max_logit), DropSlot(i)));
  }
  bucket_count_.assign(kNumBuckets + kDropSlots, 0);
  for (uint16_t b : bucket_of_) ++bucket_count_[b];
  size_t before = 0;  // candidates in buckets < last, all better than the k-th best
  int last = 0;
  while (last < kNumBuckets - 1 && before + bucket_count_[last] < k) before += bucket_count_[last++];
  CollectBuckets(logits, last, before, bucket_count_[last]);
  if (k < candidates_.size()) SelectTopK(before, k);
}

void Sampler::SelectNucleus(std::span<const float> logits, float max_logit, float threshold,
                            double need) {
  // Weights are >= 0, whose bits order like their values: comparing them as integers lets the
  // loop vectorize (a float compare becomes a branch that mispredicts on every other id).
  const uint32_t threshold_bits = std::bit_cast<uint32_t>(threshold);
  bucket_of_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const uint32_t w_bits = std::bit_cast<uint32_t>(weights_[i]);
    const bool keep = (w_bits > 0u) & (w_bits >= threshold_bits);
    bucket_of_[i] =
        static_cast<uint16_t>(SelectInt(keep, BucketOf(logits[i], max_logit), DropSlot(i)));
  }
  bucket_count_.assign(kNumBuckets + kDropSlots, 0);
  bucket_weight_.assign(kNumBuckets + kDropSlots, 0.0);
  for (size_t i = 0; i < logits.size(); ++i) {
    ++bucket_count_[bucket_of_[i]];
    bucket_weight_[bucket_of_[i]] += weights_[i];
  }
  size_t before = 0;
  double weight_before = 0.0;
  int last = 0;
  while (last < kNumBuckets && weight_before + bucket_weight_[last] < need) {
    weight_before += bucket_weight_[last];
    before += bucket_count_[last++];
  }
  // last == kNumBuckets: the weights >= threshold (min-p's set) hold less than `need`, so min-p
  // is the shorter prefix and keeps them all.
  const bool min_p_shorter = last == kNumBuckets;
  if (min_p_shorter) {
    last = kNumBuckets - 1;
    before -= bucket_count_[last];
  }
  CollectBuckets(weights_, last, before, bucket_count_[last]);
  if (!min_p_shorter) ApplyTopP(before, need - weight_before);
}

void Sampler::SelectCandidates(std::span<const float> logits, float max_logit, float inv_t) {
  candidates_.clear();
  const size_t k = static_cast<size_t>(params_.top_k);
  if (k > 0 && k < logits.size()) {
    // Top-k on the logits, then weights and filters for the k only.
    SelectTopKLogits(logits, max_logit, k);
    double total = 0.0;
    for (Candidate& c : candidates_) {
      c.first = cpu::FastExpNonPositive((c.first - max_logit) * inv_t);
      total += c.first;
    }
    const float threshold = DropThreshold(total, k);
    std::erase_if(candidates_, [threshold](const Candidate& c) { return c.first < threshold; });
    if (params_.top_p < 1.0f) {
      const double need = static_cast<double>(params_.top_p) * total;
      double kept = 0.0;
      for (const Candidate& c : candidates_) kept += c.first;
      if (kept >= need) ApplyTopP(0, need);  // else min-p's set is the shorter prefix
    }
    return;
  }
  // Whole vocabulary: vectorized weights, then keep only what could be drawn. For a peaked
  // distribution the threshold alone leaves a handful of candidates out of tens of thousands.
  weights_.resize(logits.size());
  const double total = ExpWeights(logits, max_logit, inv_t, weights_);
  const float threshold = DropThreshold(total, logits.size());
  if (params_.top_p < 1.0f) {
    SelectNucleus(logits, max_logit, threshold, static_cast<double>(params_.top_p) * total);
    return;
  }
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (weights_[i] > 0.0f && weights_[i] >= threshold) {
      candidates_.emplace_back(weights_[i], static_cast<TokenId>(i));
    }
  }
}

TokenId Sampler::SampleStochastic(std::span<const float> logits) {
  const float max_logit = MaxIgnoringNan(logits);
  const float inv_t = 1.0f / params_.temperature;
  if (!(max_logit > kNegInf) || !std::isfinite(max_logit) || !std::isfinite(inv_t)) {
    return Argmax(logits);  // degenerate row, or a temperature too small to divide by
  }
  const bool top_k_off = params_.top_k == 0 || static_cast<size_t>(params_.top_k) >= logits.size();
  if (top_k_off && params_.top_p >= 1.0f && params_.min_p <= 0.0f && !XtcActive()) {
    // Plain softmax(T): draw straight from the weights, in id order.
    weights_.resize(logits.size());
    const double total = ExpWeights(logits, max_logit, inv_t, weights_);
    const double u = Uniform01() * total;
    double cum = 0.0;
    TokenId last_live = 0;
    for (size_t i = 0; i < weights_.size(); ++i) {
      if (weights_[i] <= 0.0f) continue;
      cum += weights_[i];
      last_live = static_cast<TokenId>(i);
      if (u < cum) return last_live;
    }
    return last_live;  // rounding left u at the very end
  }

  // 1-4. Top-k, softmax with temperature, top-p, min-p. Top-p and min-p each keep a best-first
  // prefix, and min-p's threshold (min_p * the max probability) is unchanged by top-p's
  // renormalisation, so the result is the shorter prefix; computing top-p's mass over the same
  // total lets min-p filter first, which is cheaper.
  SelectCandidates(logits, max_logit, inv_t);
  TROUPE_DCHECK(!candidates_.empty());  // the best candidate (weight 1) always survives
  ApplyXtc(logits, max_logit);  // 5. XTC, on what min-p left

  // 6. Draw u in [0, mass) and walk the cumulative weights.
  double mass = 0.0;
  for (const Candidate& c : candidates_) mass += c.first;
  const double u = Uniform01() * mass;
  double cum = 0.0;
  for (const Candidate& c : candidates_) {
    cum += c.first;
    if (u < cum) return c.second;
  }
  return candidates_.back().second;  // rounding left u == mass
}

}  // namespace troupe
