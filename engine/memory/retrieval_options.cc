// Strategy names and option validation (retrieval_options.h).
#include "engine/memory/retrieval_options.h"

#include <array>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace troupe {
namespace {

constexpr std::array<std::pair<RetrievalStrategy, std::string_view>, 6> kNames = {{
    {RetrievalStrategy::kSemantic, "semantic"},
    {RetrievalStrategy::kCombinedAdditive, "combined-additive"},
    {RetrievalStrategy::kCombinedMultiplicative, "combined-multiplicative"},
    {RetrievalStrategy::kSemanticFirst, "semantic-first"},
    {RetrievalStrategy::kEmotionFirst, "emotion-first"},
    {RetrievalStrategy::kWeighted, "weighted"},
}};

bool IsSequential(RetrievalStrategy s) {
  return s == RetrievalStrategy::kSemanticFirst || s == RetrievalStrategy::kEmotionFirst;
}

bool ValidWeight(float w) { return std::isfinite(w) && w >= 0.0f; }

}  // namespace

std::string_view StrategyName(RetrievalStrategy strategy) {
  for (const auto& [s, name] : kNames) {
    if (s == strategy) return name;
  }
  return "unknown";
}

absl::StatusOr<RetrievalStrategy> ParseStrategy(std::string_view name) {
  for (const auto& [s, n] : kNames) {
    if (n == name) return s;
  }
  return absl::InvalidArgumentError(absl::StrFormat("unknown retrieval strategy \"%s\"", name));
}

absl::Status ValidateRetrievalOptions(const RetrievalOptions& options) {
  if (options.k < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("retrieval k = %d must be >= 1", options.k));
  }
  if (IsSequential(options.strategy) && options.pool < options.k) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s retrieval needs pool >= k (pool = %d, k = %d)",
                        StrategyName(options.strategy), options.pool, options.k));
  }
  if (options.strategy == RetrievalStrategy::kWeighted) {
    const WeightedScoring& w = options.weighted;
    if (!ValidWeight(w.w_sem) || !ValidWeight(w.w_emo) || !ValidWeight(w.w_rec) ||
        !ValidWeight(w.w_imp)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "weighted retrieval weights must be finite and >= 0 (sem %g, emo %g, rec %g, imp %g)",
          w.w_sem, w.w_emo, w.w_rec, w.w_imp));
    }
    if (w.recency_half_life_ms <= 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("recency_half_life_ms = %d must be > 0", w.recency_half_life_ms));
    }
  }
  return absl::OkStatus();
}

}  // namespace troupe
