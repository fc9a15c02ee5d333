// Token sampling over one row of logits: penalties and DRY, then greedy argmax or top-k ->
// softmax with temperature -> top-p -> min-p -> XTC -> a seeded draw. One Sampler per request;
// engine thread only.
// docs/sampling.md describes the order and the determinism contract.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "common/thread_owner.h"
#include "common/types.h"
#include "engine/sampler/dry.h"
#include "engine/sampler/sampling_params.h"

namespace troupe {

struct TokenLogprob {
  TokenId id = 0;
  float logprob = 0.0f;  // natural log of the softmax over the raw (unpenalised, T=1) logits
};

struct SampleResult {
  TokenId id = 0;
  float logprob = 0.0f;           // of `id`; filled only when params.logprobs >= 0
  std::vector<TokenLogprob> top;  // params.logprobs entries (empty for -1 and 0), best first,
                                  // ties by lower id
  std::vector<TokenLogprob> scored;  // one per params.scored_token_ids, in that order
};

// Samples one token per call for one request and remembers what it sampled, so the repetition,
// presence and frequency penalties see the request's own output.
//
// Determinism: with params.seed set, the sequence of returned ids is a pure function of
// (params, prompt, the logits passed in), independent of the standard library (the RNG is
// std::mt19937_64, whose output the standard fixes, and the uniform is built from its top 53 bits).
//
// Cost per call for vocab V: O(penalty window) + O(V): top-k and top-p take a histogram over
// distance-from-max buckets, then quickselect inside the one boundary bucket (our own partition,
// so the candidate order, hence the draw, is the same on every standard library); nothing sorts
// the vocabulary. Scratch only grows: once at its working size (up to
// ~1 MB at vocab 49152) a call allocates nothing but SampleResult::top when logprobs > 0.
//
// Not thread-safe; engine thread only (one Sampler belongs to one request): Sample,
// SampleReadOnly and Accept check it in debug builds (common/thread_owner.h); a moved-to
// Sampler binds anew to the first thread that samples with it.
class Sampler {
 public:
  // `prompt` feeds the penalty and DRY windows (only its last max(penalty_last_n,
  // dry_penalty_last_n) tokens are kept). `dry_breakers` flags the sequence-breaker ids of
  // params.dry_sequence_breakers (DryBreakerCache); null means no token breaks a repeat. The
  // RNG is seeded from params.seed, or from std::random_device when absent.
  // REQUIRES: ValidateSamplingParams(params).ok().
  Sampler(const SamplingParams& params, std::span<const TokenId> prompt,
          std::shared_ptr<const BreakerTokens> dry_breakers = nullptr);

  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;
  Sampler(Sampler&&) = default;
  Sampler& operator=(Sampler&&) = default;

  // Samples one id from logits[vocab] and appends it to the history used by penalties. The
  // penalties are applied to `logits` in place and undone before returning, so the row is
  // unchanged on return. NaN and -inf logits are never chosen unless every logit is NaN or
  // -inf, in which case id 0 is returned.
  // REQUIRES: !logits.empty().
  SampleResult Sample(std::span<float> logits);

  // Same as Sample for a row the caller cannot write (e.g. the model's output buffer): copies
  // it into a reused member buffer only when a penalty is active, and reads it in place
  // otherwise. REQUIRES: !logits.empty().
  SampleResult SampleReadOnly(std::span<const float> logits);

  // Records a token chosen elsewhere (e.g. forced by the caller) in the penalty history.
  void Accept(TokenId id);

  const SamplingParams& params() const { return params_; }
  int num_generated() const { return static_cast<int>(history_.size() - num_prompt_); }

 private:
  // Applies repetition/presence/frequency penalties, then DRY, in place, saving the original
  // values of the logits it touches in saved_ so RestoreLogits can undo them.
  void ApplyPenalties(std::span<float> logits);
  void ApplyRepetitionPenalties(std::span<float> logits);
  void ApplyDry(std::span<float> logits);
  void RestoreLogits(std::span<float> logits);
  bool PenaltiesActive() const { return RepetitionActive() || DryActive(); }
  bool RepetitionActive() const;
  bool DryActive() const;
  bool XtcActive() const;
  // XTC over candidates_ (after min-p): with probability xtc_probability, drops every
  // candidate whose untempered probability reaches xtc_threshold except the least likely.
  void ApplyXtc(std::span<const float> logits, float max_logit);
  bool WantsLogprobs() const { return params_.logprobs >= 0 || !params_.scored_token_ids.empty(); }
  // Greedy or stochastic choice over the penalised row.
  TokenId Choose(std::span<const float> penalised);
  // Fills in id and its logprob (from the raw row) and appends id to the history.
  SampleResult Record(std::span<const float> raw, TokenId id, SampleResult result,
                      double raw_lse);
  // Fills result->top with the best params_.logprobs raw logits and returns log(sum(exp(raw))).
  double RawLogSumExp(std::span<const float> logits, SampleResult* result);
  TokenId Argmax(std::span<const float> logits) const;
  TokenId SampleStochastic(std::span<const float> logits);
  // Fills candidates_ with (weight, id) for exactly the ids top-k, top-p and min-p keep, with
  // weight = e^((logit - max) / T) (the best weighs 1), in an order fixed by our own code.
  void SelectCandidates(std::span<const float> logits, float max_logit, float inv_t);
  // Top-k on the logits: candidates_ = (logit, id) of the k best, in no particular order.
  void SelectTopKLogits(std::span<const float> logits, float max_logit, size_t k);
  // Top-p over the whole vocabulary given weights_: candidates_ = (weight, id) of the nucleus
  // among the weights >= threshold.
  void SelectNucleus(std::span<const float> logits, float max_logit, float threshold,
                     double need);
  // Weight below which no token can be drawn: min_p (the best weighs 1) and, for top-p, half of
  // (1 - top_p) * total / n (everything at or below such a weight is < (1 - top_p) of the mass).
  float DropThreshold(double total_weight, size_t n) const;
  // candidates_ = (values[i], i) for ids in buckets < last (bucket_of_), then those in bucket
  // `last`, each group in id order. REQUIRES: num_front / num_last match bucket_of_.
  void CollectBuckets(std::span<const float> values, int last, size_t num_front,
                      size_t num_last);
  // Reorders candidates_[lo, end) so candidates_[0, k) are the k best, then truncates to k.
  // REQUIRES: candidates_[0, lo) are better than the rest; lo < k < candidates_.size().
  void SelectTopK(size_t lo, size_t k);
  // Truncates candidates_ to [0, lo) plus the fewest best of [lo, end) whose weight reaches
  // `need`. REQUIRES: candidates_[0, lo) are better than the rest.
  void ApplyTopP(size_t lo, double need);
  double Uniform01();  // [0, 1) from the top 53 bits of one rng_ draw

  // Constant after construction.
  SamplingParams params_;
  size_t num_prompt_ = 0;  // prompt tokens kept at the front of history_

  std::vector<TokenId> history_;  // kept prompt tail, then generated ids
  std::shared_ptr<const BreakerTokens> dry_breakers_;
  std::mt19937_64 rng_;

  // Scratch, sized on the first Sample call and reused.
  std::vector<int32_t> counts_;                     // [vocab]; 0 = unseen, else 1 + output count
  std::vector<TokenId> touched_;                    // ids with counts_ != 0 this call
  std::vector<std::pair<TokenId, float>> saved_;    // original logits changed by penalties
  std::vector<float> row_;                          // [vocab] SampleReadOnly's copy
  std::vector<float> weights_;                      // [vocab]
  std::vector<uint16_t> bucket_of_;                 // [vocab]: bucket, or a drop slot
  std::vector<int32_t> bucket_count_;               // [kNumBuckets + kDropSlots], sampler.cc
  std::vector<double> bucket_weight_;               // [kNumBuckets + kDropSlots]
  std::vector<std::pair<float, TokenId>> tail_;     // CollectBuckets scratch
  std::vector<std::pair<float, TokenId>> candidates_;  // (logit, then weight; id)
  std::vector<int32_t> dry_scratch_;                   // DryPenalties' Z-function
  std::vector<std::pair<TokenId, float>> dry_penalties_;
  std::vector<float> xtc_mass_;                        // [candidates] untempered weights

  ThreadOwner engine_thread_;
};

}  // namespace troupe
