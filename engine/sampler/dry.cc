// DRY penalties and sequence-breaker tokens. See dry.h and docs/sampling.md.
#include "engine/sampler/dry.h"

#include <algorithm>
#include <cfloat>

#include "engine/tokenizer/tokenizer.h"

namespace troupe {
namespace {

// base^exponent by squaring: a fixed sequence of double products, the same on every libm
// (std::pow need not be), capped at FLT_MAX. REQUIRES: base >= 1.
double PowerCapped(double base, size_t exponent) {
  double result = 1.0;
  while (exponent > 0 && result <= FLT_MAX) {
    if (exponent & 1) result *= base;
    exponent >>= 1;
    if (exponent > 0) base = std::min(base * base, static_cast<double>(FLT_MAX) * 2.0);
  }
  return std::min(result, static_cast<double>(FLT_MAX));
}

}  // namespace

BreakerTokens FindBreakerTokens(const Tokenizer& tokenizer, std::span<const std::string> breakers) {
  BreakerTokens flags(static_cast<size_t>(tokenizer.vocab_size()), 0);
  if (breakers.empty()) return flags;
  for (int id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string bytes = tokenizer.TokenBytes(id);
    for (const std::string& breaker : breakers) {
      if (!breaker.empty() && bytes.find(breaker) != std::string::npos) {
        flags[id] = 1;
        break;
      }
    }
  }
  return flags;
}

std::shared_ptr<const BreakerTokens> DryBreakerCache::Get(const std::vector<std::string>& breakers) {
  {
    absl::MutexLock lock(&mu_);
    for (Entry& entry : entries_) {
      if (entry.breakers == breakers) {
        entry.last_used = ++clock_;
        return entry.tokens;
      }
    }
  }
  // Scan outside the lock: two threads may both scan a new list; the second keeps the first's.
  auto tokens = std::make_shared<const BreakerTokens>(FindBreakerTokens(tokenizer_, breakers));
  absl::MutexLock lock(&mu_);
  for (Entry& entry : entries_) {
    if (entry.breakers == breakers) return entry.tokens;
  }
  if (entries_.size() >= kCapacity) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const Entry& a, const Entry& b) { return a.last_used < b.last_used; });
    entries_.erase(oldest);
  }
  entries_.push_back(Entry{.breakers = breakers, .tokens = tokens, .last_used = ++clock_});
  return tokens;
}

void DryPenalties(std::span<const TokenId> window, const BreakerTokens* breakers,
                  const SamplingParams& params, std::vector<int32_t>* scratch,
                  std::vector<std::pair<TokenId, float>>* penalties) {
  penalties->clear();
  const size_t n = window.size();
  const size_t allowed = static_cast<size_t>(params.dry_allowed_length);
  if (n < 2 || allowed < 1) return;
  const auto is_breaker = [breakers](TokenId id) {
    return breakers != nullptr && id >= 0 && static_cast<size_t>(id) < breakers->size() &&
           (*breakers)[id] != 0;
  };
  // r[j] = window[n - 1 - j]: the window read backwards from its last token. A repeat of the
  // window's ending that ends at window[i] is a common prefix of r and r[n - 1 - i, n).
  const auto r = [&window, n](size_t j) { return window[n - 1 - j]; };
  // A repeat cannot reach back past the last breaker of the ending.
  size_t cap = 0;
  while (cap < n && !is_breaker(r(cap))) ++cap;
  if (cap < allowed) return;

  // Z-function of r: z[j] = length of the longest common prefix of r and r[j, n).
  std::vector<int32_t>& z = *scratch;
  z.assign(n, 0);
  size_t left = 0;
  size_t right = 0;  // [left, right) is the rightmost match found so far
  for (size_t j = 1; j < n; ++j) {
    size_t k = 0;
    if (j < right) k = std::min(right - j, static_cast<size_t>(z[j - left]));
    while (j + k < n && r(k) == r(j + k)) ++k;
    z[j] = static_cast<int32_t>(k);
    if (j + k > right) {
      left = j;
      right = j + k;
    }
  }
  // The repeat ending at window[n - 1 - j] is followed by window[n - j] = r(j - 1).
  for (size_t j = 1; j < n; ++j) {
    const size_t length = std::min(static_cast<size_t>(z[j]), cap);
    if (length >= allowed) penalties->emplace_back(r(j - 1), static_cast<float>(length));
  }
  if (penalties->empty()) return;
  // One entry per id, the longest repeat.
  std::sort(penalties->begin(), penalties->end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  penalties->erase(std::unique(penalties->begin(), penalties->end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   penalties->end());
  for (auto& [id, value] : *penalties) {
    const double penalty = params.dry_multiplier *
                           PowerCapped(params.dry_base, static_cast<size_t>(value) - allowed);
    value = static_cast<float>(std::min(penalty, static_cast<double>(FLT_MAX)));
  }
}

}  // namespace troupe
