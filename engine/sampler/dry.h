// DRY ("don't repeat yourself", p-e-w's sampler in text-generation-webui, koboldcpp and
// llama.cpp): a token that would continue a verbatim repeat of an earlier stretch of the
// context loses logit in proportion to how long the repeat already is. docs/sampling.md.
//
// Sequence breakers (newline, ':', '"', '*' by default) end a repeat: a match never reaches
// back across one, so names, quotes and formatting that recur on every line are not punished.
// Breakers are strings; a token breaks when its bytes contain one of them (exact for the
// usual one-character breakers; a breaker that only ever spans two tokens is not seen).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/types.h"
#include "engine/sampler/sampling_params.h"

namespace troupe {

class Tokenizer;

// One flag per vocabulary id: 1 where the token's bytes contain a sequence breaker.
using BreakerTokens = std::vector<uint8_t>;

// The ids whose bytes (Tokenizer::TokenBytes, special tokens rendered as nothing) contain any
// of `breakers`. A scan of the vocabulary: cache the result (DryBreakerCache).
[[nodiscard]] BreakerTokens FindBreakerTokens(const Tokenizer& tokenizer,
                                              std::span<const std::string> breakers);

// FindBreakerTokens per distinct breaker list, for the threads that accept requests. Holds at
// most kCapacity lists; past that it forgets the least recently used one. Thread-safe.
class DryBreakerCache {
 public:
  static constexpr size_t kCapacity = 32;

  explicit DryBreakerCache(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // The flags for `breakers`; a list seen before costs a lookup, a new one a vocabulary scan.
  std::shared_ptr<const BreakerTokens> Get(const std::vector<std::string>& breakers);

 private:
  struct Entry {
    std::vector<std::string> breakers;
    std::shared_ptr<const BreakerTokens> tokens;
    uint64_t last_used = 0;
  };
  const Tokenizer& tokenizer_;
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
};

// The DRY penalties for the token after `window` (the last dry_penalty_last_n tokens of prompt
// + output). For each id t: L(t) is the longest run that ends the window, holds no breaker,
// and also occurs earlier in the window followed by t; t loses
// multiplier * base^(L(t) - allowed_length) when L(t) >= allowed_length (the power is capped
// where the penalty passes FLT_MAX). Returns (id, penalty) pairs, one per penalised id, by id.
// O(window): one Z-function pass over the reversed window. `breakers` may be null (none);
// ids outside it are not breakers. `scratch` is reused between calls.
// REQUIRES: params.dry_allowed_length >= 1.
void DryPenalties(std::span<const TokenId> window, const BreakerTokens* breakers,
                  const SamplingParams& params, std::vector<int32_t>* scratch,
                  std::vector<std::pair<TokenId, float>>* penalties);

}  // namespace troupe
