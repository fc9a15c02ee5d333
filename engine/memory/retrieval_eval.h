// Retrieval-quality metrics for emotional RAG against a labelled set (docs/memory.md,
// "Labelled retrieval set"): Recall@K and nDCG@K over G_sem u G_emo with graded gains,
// emotional congruence@K, semantic Recall@K, MRR and point-in-time violations.
// Plain functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/memory/emotion.h"
#include "engine/memory/memory_unit.h"

namespace troupe {

// Gold labels of one query.
struct RetrievalLabels {
  std::vector<MemoryId> semantic;   // G_sem: the memories relevant to the query's subject
  std::vector<MemoryId> emotional;  // G_emo: relevant ones whose dominant emotion is the query's
};

// Metrics of one ranking, each over its first K entries (fewer if the ranking is shorter).
// R = G_sem u G_emo; gain(m) = [m in G_sem] + [m in G_emo] (2 if in both, 1 if in one).
struct QueryMetrics {
  double recall = 0.0;           // |top-K n R| / min(|R|, K) (capped, so 1 is reachable)
  double ndcg = 0.0;             // DCG / ideal DCG, DCG = sum_i gain(m_i) / log2(i + 1), i = 1..K
  double congruence = 0.0;       // mean cos(v_q, v_m) over the top K; 0 for an empty ranking
  double semantic_recall = 0.0;  // |top-K n G_sem| / min(|G_sem|, K)
  double mrr = 0.0;              // 1 / rank of the first member of R in the top K, else 0
  int time_violations = 0;       // top-K memories with story_time > point_in_time
};

// Scores `ranked` (best first). Metrics whose gold set is empty are 0.
// REQUIRES: k >= 1; no null pointers in `ranked`.
QueryMetrics EvaluateRanking(std::span<const MemoryUnit* const> ranked,
                             const EmotionVector& query_emotion,
                             std::optional<int64_t> point_in_time, const RetrievalLabels& labels,
                             int k);

// Means over queries of every QueryMetrics field; time_violations is the total.
struct RetrievalMetrics {
  int num_queries = 0;
  double recall = 0.0;
  double ndcg = 0.0;
  double congruence = 0.0;
  double semantic_recall = 0.0;
  double mrr = 0.0;
  int64_t time_violations = 0;
};

RetrievalMetrics Average(std::span<const QueryMetrics> per_query);

}  // namespace troupe
