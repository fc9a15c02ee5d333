// Retrieval-quality metrics (retrieval_eval.h).
#include "engine/memory/retrieval_eval.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "common/check.h"

namespace troupe {
namespace {

bool Contains(const std::vector<MemoryId>& sorted, MemoryId id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

std::vector<MemoryId> SortedUnique(std::vector<MemoryId> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

double Discount(size_t rank0) { return 1.0 / std::log2(static_cast<double>(rank0) + 2.0); }

}  // namespace

QueryMetrics EvaluateRanking(std::span<const MemoryUnit* const> ranked,
                             const EmotionVector& query_emotion,
                             std::optional<int64_t> point_in_time, const RetrievalLabels& labels,
                             int k) {
  TROUPE_CHECK(k >= 1);
  const std::vector<MemoryId> sem = SortedUnique(labels.semantic);
  const std::vector<MemoryId> emo = SortedUnique(labels.emotional);
  std::vector<MemoryId> relevant = sem;
  relevant.insert(relevant.end(), emo.begin(), emo.end());
  relevant = SortedUnique(std::move(relevant));
  const auto gain = [&](MemoryId id) { return int{Contains(sem, id)} + int{Contains(emo, id)}; };

  QueryMetrics m;
  const size_t n = std::min(ranked.size(), static_cast<size_t>(k));
  int hits = 0, sem_hits = 0;
  double dcg = 0.0, cos_sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const MemoryUnit& unit = *ranked[i];
    const int g = gain(unit.id);
    if (g > 0) {
      ++hits;
      if (m.mrr == 0.0) m.mrr = 1.0 / static_cast<double>(i + 1);
    }
    sem_hits += Contains(sem, unit.id);
    dcg += g * Discount(i);
    cos_sum += EmotionCosine(query_emotion, unit.emotion);
    if (point_in_time && unit.story_time && *unit.story_time > *point_in_time) ++m.time_violations;
  }
  if (n > 0) m.congruence = cos_sum / static_cast<double>(n);
  if (!relevant.empty()) {
    m.recall = hits / static_cast<double>(std::min(relevant.size(), static_cast<size_t>(k)));
    std::vector<int> gains;
    for (MemoryId id : relevant) gains.push_back(gain(id));
    std::sort(gains.begin(), gains.end(), std::greater<int>());
    double ideal = 0.0;
    for (size_t i = 0; i < gains.size() && i < static_cast<size_t>(k); ++i) {
      ideal += gains[i] * Discount(i);
    }
    m.ndcg = dcg / ideal;
  }
  if (!sem.empty()) {
    m.semantic_recall =
        sem_hits / static_cast<double>(std::min(sem.size(), static_cast<size_t>(k)));
  }
  return m;
}

RetrievalMetrics Average(std::span<const QueryMetrics> per_query) {
  RetrievalMetrics avg;
  avg.num_queries = static_cast<int>(per_query.size());
  for (const QueryMetrics& q : per_query) {
    avg.recall += q.recall;
    avg.ndcg += q.ndcg;
    avg.congruence += q.congruence;
    avg.semantic_recall += q.semantic_recall;
    avg.mrr += q.mrr;
    avg.time_violations += q.time_violations;
  }
  if (avg.num_queries > 0) {
    const double n = avg.num_queries;
    avg.recall /= n;
    avg.ndcg /= n;
    avg.congruence /= n;
    avg.semantic_recall /= n;
    avg.mrr /= n;
  }
  return avg;
}

}  // namespace troupe
