// What a memory search asks for: the query (embedding, emotion, point in time), the ranking
// strategy with its parameters, and the shape of each hit. Exact formulas: docs/memory.md.
// Plain value types; safe to share read-only between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/memory/emotion.h"
#include "engine/memory/memory_unit.h"

namespace troupe {

// Notation: e = semantic embedding (unit norm), v = emotion vector,
//   d_sem = ||e_q - e_m||_2            (in [0, 2] for unit vectors; smaller = closer)
//   d_emo = 1 - cos(v_q, v_m)          (in [0, 1) for 1..10 vectors; smaller = closer)
// The first five are Emotional RAG's modes (Huang et al. 2024, BAI-LAB/EmotionalRAG), exactly.
// Every ranking breaks ties by MemoryId, ascending.
enum class RetrievalStrategy {
  kSemantic,                // paper "OriginalRAG": top-k by d_sem ascending
  kCombinedAdditive,        // paper "C-A": top-k by d_sem + d_emo ascending
  kCombinedMultiplicative,  // paper "C-M": top-k by d_sem * d_emo ascending
  kSemanticFirst,           // paper "S-C": the `pool` lowest d_sem, re-ranked by d_emo, top-k
  kEmotionFirst,            // paper "S-S": the `pool` lowest d_emo, re-ranked by d_sem, top-k
  kWeighted,                // generalised linear score, top-k descending (WeightedScoring)
};

// "semantic", "combined-additive", "combined-multiplicative", "semantic-first",
// "emotion-first", "weighted".
std::string_view StrategyName(RetrievalStrategy strategy);
// The inverse of StrategyName; kInvalidArgument for any other string.
[[nodiscard]] absl::StatusOr<RetrievalStrategy> ParseStrategy(std::string_view name);

// kWeighted: score = w_sem * cos(e_q, e_m)
//                  + w_emo * cos(v_q, v_m)
//                  + w_rec * 2^(-age_ms / recency_half_life_ms)
//                  + w_imp * importance / 10
// with age_ms = max(0, now_ms - wall_time_ms); higher is better. Each term lies in [0, 1] except
// the semantic cosine ([-1, 1]). The defaults (1, 0.15, 0, 0) are the server's default retrieval,
// chosen on the labelled set by a stated rule (docs/memory.md, "The default"): the best nDCG@10
// within 3 points of semantic-only's Recall@10. (1, 1, 0, 0) is the linear counterpart of C-A:
// near the typical relevant distance d_sem ~ 1, d(d_sem)/d(cos) = -1/d_sem ~ -1, so ranking by
// cos_sem + cos_emo ~ ranking by -(d_sem + d_emo). FinMem's "cos + recency + importance" is
// (1, 0, 1, 1).
struct WeightedScoring {
  float w_sem = 1.0f;
  float w_emo = 0.15f;
  float w_rec = 0.0f;
  float w_imp = 0.0f;
  int64_t recency_half_life_ms = int64_t{7} * 24 * 3600 * 1000;  // one week
};

struct RetrievalOptions {
  // The measured default (WeightedScoring's comment); the paper's C-A is kCombinedAdditive.
  RetrievalStrategy strategy = RetrievalStrategy::kWeighted;
  int k = 10;                // hits returned (fewer when fewer memories pass the time filter)
  int pool = 20;             // kSemanticFirst / kEmotionFirst candidate pool; ignored by the others
  WeightedScoring weighted;  // kWeighted only
};

// OK, or kInvalidArgument when: k < 1; a sequential strategy has pool < k; kWeighted has a
// negative or non-finite weight or recency_half_life_ms <= 0.
[[nodiscard]] absl::Status ValidateRetrievalOptions(const RetrievalOptions& options);

struct RetrievalQuery {
  // [dim], unit L2 norm; borrowed for the duration of the call.
  std::span<const float> embedding;
  // The retrieval key: the query's own emotion (the paper) or the session mood (UpdateMood).
  EmotionVector emotion = kNeutralEmotion;
  // TimeChara cutoff: memories whose story_time is later are never returned; timeless memories
  // always pass. nullopt = no cutoff.
  std::optional<int64_t> point_in_time;
  int64_t now_ms = 0;  // Unix epoch milliseconds; kWeighted recency only
};

struct RetrievalHit {
  MemoryId id = 0;
  int64_t row = 0;     // position in the searched span, or MemoryIndex row (valid until the
                       // index's next Add/Remove)
  float score = 0.0f;  // the final ranking key: d_sem (kSemantic, kEmotionFirst), d_sem + d_emo,
                       // d_sem * d_emo, d_emo (kSemanticFirst), or the weighted score
  float d_sem = 0.0f;  // ||e_q - e_m||_2
  float d_emo = 0.0f;  // 1 - cos(v_q, v_m)
};

}  // namespace troupe
