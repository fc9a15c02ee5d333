// Emotional-RAG ranking (retriever.h): the fast path over a MemoryIndex and the reference over
// a span of MemoryUnit.
//
// Design: a search is memory-bound on the [size, dim] embedding matrix (10,000 x 384 floats =
// 15 MB), so the fast path reads it once, row by row, and keeps only the best `capacity` hits
// in a max-heap (worst on top) that lives in the result vector: most rows cost one distance
// and one comparison with the heap's top. Sequential strategies select their pool the same
// way, then re-rank the pool in place and cut it to k. Emotion distances are 8-float dot
// products against precomputed norms, and cost little next to the 384-float distances.
#include "engine/memory/retriever.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/status_macros.h"

namespace troupe {
namespace {

// ---- shared helpers ----

bool IsSequential(RetrievalStrategy s) {
  return s == RetrievalStrategy::kSemanticFirst || s == RetrievalStrategy::kEmotionFirst;
}

// Ascending score, then ascending id: the one order every strategy ranks by (kWeighted ranks
// by the negated score and flips the sign back at the end).
bool RanksBefore(const RetrievalHit& a, const RetrievalHit& b) {
  return a.score < b.score || (a.score == b.score && a.id < b.id);
}

absl::Status ValidateQuery(const RetrievalQuery& query, int dim) {
  TROUPE_RETURN_IF_ERROR(ValidateEmbedding(query.embedding, dim));
  return ValidateEmotion(query.emotion);
}

// ---- fast path ----

constexpr int kLanes = 32;  // independent partial sums: two AVX-512 or four AVX2 registers

// Folds kLanes partial sums pairwise (a fixed order, so results do not depend on the ISA).
float FoldLanes(float (&acc)[kLanes]) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

// ||a - b||^2 over n floats.
float SquaredDistance(const float* a, const float* b, int n) {
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float d = a[i + j] - b[i + j];
      acc[j] += d * d;
    }
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += (a[i] - b[i]) * (a[i] - b[i]);
  return FoldLanes(acc) + tail;
}

// a . b over n floats.
float Dot(const float* a, const float* b, int n) {
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return FoldLanes(acc) + tail;
}

// The best `capacity` hits offered so far, as a max-heap under RanksBefore in `heap`.
class BestHits {
 public:
  BestHits(std::vector<RetrievalHit>& heap, size_t capacity) : heap_(heap), capacity_(capacity) {}

  void Offer(const RetrievalHit& hit) {
    if (heap_.size() < capacity_) {
      heap_.push_back(hit);
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    } else if (RanksBefore(hit, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), RanksBefore);
      heap_.back() = hit;
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    }
  }

  // Leaves the hits sorted best first.
  void Finish() { std::sort_heap(heap_.begin(), heap_.end(), RanksBefore); }

 private:
  std::vector<RetrievalHit>& heap_;
  const size_t capacity_;
};

// Everything one search reads, resolved once.
struct SearchContext {
  const MemoryIndex& index;
  const RetrievalQuery& query;
  int64_t cutoff;  // story_time must be <= cutoff
  float query_emo_norm;
  float query_emb_norm;

  float DSem(int64_t row) const {
    return std::sqrt(SquaredDistance(query.embedding.data(), index.embedding(row), index.dim()));
  }
  float DEmo(int64_t row) const {
    // EmotionDistance's exact float operations, with the memory's norm precomputed.
    return 1.0f - EmotionDot(query.emotion, index.emotions()[row]) /
                      (query_emo_norm * index.emotion_norms()[row]);
  }
};

// Offers every memory that passes the cutoff, scored by `score(row, hit)`.
template <typename ScoreFn>
void Scan(const SearchContext& ctx, BestHits& best, ScoreFn score) {
  const std::span<const int64_t> story_times = ctx.index.story_times();
  const std::span<const MemoryId> ids = ctx.index.ids();
  const int64_t n = ctx.index.size();
  for (int64_t row = 0; row < n; ++row) {
    if (story_times[row] > ctx.cutoff) continue;
    RetrievalHit hit;
    hit.id = ids[row];
    hit.row = row;
    score(row, hit);
    best.Offer(hit);
  }
}

// Weighted score of one row (higher is better); see WeightedScoring.
float WeightedScore(const SearchContext& ctx, const WeightedScoring& w, int64_t row, float d_emo) {
  float score = 0.0f;
  if (w.w_sem != 0.0f) {
    const float cos_sem =
        Dot(ctx.query.embedding.data(), ctx.index.embedding(row), ctx.index.dim()) /
        (ctx.query_emb_norm * ctx.index.embedding_norms()[row]);
    score += w.w_sem * cos_sem;
  }
  score += w.w_emo * (1.0f - d_emo);
  if (w.w_rec != 0.0f) {
    const int64_t age_ms = std::max<int64_t>(0, ctx.query.now_ms - ctx.index.wall_times_ms()[row]);
    const double half_lives = static_cast<double>(age_ms) / w.recency_half_life_ms;
    score += w.w_rec * std::exp2(-static_cast<float>(half_lives));
  }
  score += w.w_imp * ctx.index.importance()[row] / 10.0f;
  return score;
}

// First stage: one pass over the rows, keeping the best `capacity` by the stage's key.
void ScanRows(const SearchContext& ctx, const RetrievalOptions& options, BestHits& best) {
  switch (options.strategy) {
    case RetrievalStrategy::kSemantic:
    case RetrievalStrategy::kSemanticFirst:
      Scan(ctx, best, [&](int64_t row, RetrievalHit& h) {
        h.d_sem = ctx.DSem(row);
        h.d_emo = ctx.DEmo(row);
        h.score = h.d_sem;
      });
      break;
    case RetrievalStrategy::kCombinedAdditive:
      Scan(ctx, best, [&](int64_t row, RetrievalHit& h) {
        h.d_sem = ctx.DSem(row);
        h.d_emo = ctx.DEmo(row);
        h.score = h.d_sem + h.d_emo;
      });
      break;
    case RetrievalStrategy::kCombinedMultiplicative:
      Scan(ctx, best, [&](int64_t row, RetrievalHit& h) {
        h.d_sem = ctx.DSem(row);
        h.d_emo = ctx.DEmo(row);
        h.score = h.d_sem * h.d_emo;
      });
      break;
    case RetrievalStrategy::kEmotionFirst:
      Scan(ctx, best, [&](int64_t row, RetrievalHit& h) {  // d_sem waits for the pool
        h.d_emo = ctx.DEmo(row);
        h.score = h.d_emo;
      });
      break;
    case RetrievalStrategy::kWeighted:
      Scan(ctx, best, [&](int64_t row, RetrievalHit& h) {  // d_sem waits for the top k
        h.d_emo = ctx.DEmo(row);
        h.score = -WeightedScore(ctx, options.weighted, row, h.d_emo);
      });
      break;
  }
  best.Finish();
}

// Second stage, on the sorted survivors: re-rank sequential pools and cut them to k; fill in
// the distances the scan skipped; give kWeighted its score's sign back.
void FinishHits(const SearchContext& ctx, const RetrievalOptions& options,
                std::vector<RetrievalHit>& hits) {
  switch (options.strategy) {
    case RetrievalStrategy::kSemanticFirst:
      for (RetrievalHit& h : hits) h.score = h.d_emo;
      break;
    case RetrievalStrategy::kEmotionFirst:
      for (RetrievalHit& h : hits) h.score = h.d_sem = ctx.DSem(h.row);
      break;
    case RetrievalStrategy::kWeighted:
      for (RetrievalHit& h : hits) {
        h.score = -h.score;
        h.d_sem = ctx.DSem(h.row);
      }
      return;  // already in its final order (descending score, ascending id)
    default:
      return;
  }
  std::sort(hits.begin(), hits.end(), RanksBefore);
  if (hits.size() > static_cast<size_t>(options.k)) hits.resize(options.k);
}

}  // namespace

absl::StatusOr<std::vector<RetrievalHit>> Retrieve(const MemoryIndex& index,
                                                   const RetrievalQuery& query,
                                                   const RetrievalOptions& options) {
  TROUPE_RETURN_IF_ERROR(ValidateRetrievalOptions(options));
  TROUPE_RETURN_IF_ERROR(ValidateQuery(query, index.dim()));
  std::vector<RetrievalHit> hits;
  const int64_t capacity = IsSequential(options.strategy) ? options.pool : options.k;
  hits.reserve(static_cast<size_t>(std::min(capacity, index.size())));
  float emb_norm_sq = 0.0f;
  for (float x : query.embedding) emb_norm_sq += x * x;
  const SearchContext ctx{
      .index = index,
      .query = query,
      .cutoff = query.point_in_time.value_or(std::numeric_limits<int64_t>::max()),
      .query_emo_norm = EmotionNorm(query.emotion),
      .query_emb_norm = std::sqrt(emb_norm_sq),
  };
  BestHits best(hits, static_cast<size_t>(capacity));
  ScanRows(ctx, options, best);
  FinishHits(ctx, options, hits);
  return hits;
}

// ---- reference ----

namespace {

struct RefCandidate {
  double d_sem = 0.0;
  double d_emo = 0.0;
  double cos_sem = 0.0;
  double recency = 0.0;
  double importance = 0.0;
  MemoryId id = 0;
  int64_t row = 0;
};

// Sorts ascending by key(c), ties by id.
template <typename KeyFn>
void SortBy(std::vector<RefCandidate>& cands, KeyFn key) {
  std::sort(cands.begin(), cands.end(), [&](const RefCandidate& a, const RefCandidate& b) {
    const double ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a.id < b.id);
  });
}

// Every distance and score term of each memory that passes the cutoff.
absl::StatusOr<std::vector<RefCandidate>> ScoreAll(std::span<const MemoryUnit> memories,
                                                   const RetrievalQuery& query,
                                                   const WeightedScoring& w) {
  const int dim = static_cast<int>(query.embedding.size());
  std::vector<RefCandidate> cands;
  for (size_t row = 0; row < memories.size(); ++row) {
    const MemoryUnit& m = memories[row];
    TROUPE_RETURN_IF_ERROR(ValidateEmbedding(m.embedding, dim));
    TROUPE_RETURN_IF_ERROR(ValidateEmotion(m.emotion));
    if (query.point_in_time && m.story_time && *m.story_time > *query.point_in_time) continue;
    double sq = 0.0, dot = 0.0, qq = 0.0, mm = 0.0;
    for (int i = 0; i < dim; ++i) {
      const double q = query.embedding[i], e = m.embedding[i];
      sq += (q - e) * (q - e);
      dot += q * e;
      qq += q * q;
      mm += e * e;
    }
    double vdot = 0.0, vq = 0.0, vm = 0.0;
    for (int i = 0; i < kNumEmotions; ++i) {
      vdot += double{query.emotion[i]} * m.emotion[i];
      vq += double{query.emotion[i]} * query.emotion[i];
      vm += double{m.emotion[i]} * m.emotion[i];
    }
    const double age_ms = std::max(0.0, double(query.now_ms) - double(m.wall_time_ms));
    cands.push_back({.d_sem = std::sqrt(sq),
                     .d_emo = 1.0 - vdot / std::sqrt(vq * vm),
                     .cos_sem = dot / std::sqrt(qq * mm),
                     .recency = std::exp2(-age_ms / double(w.recency_half_life_ms)),
                     .importance = m.importance,
                     .id = m.id,
                     .row = static_cast<int64_t>(row)});
  }
  return cands;
}

}  // namespace

absl::StatusOr<std::vector<RetrievalHit>> RetrieveReference(std::span<const MemoryUnit> memories,
                                                            const RetrievalQuery& query,
                                                            const RetrievalOptions& options) {
  TROUPE_RETURN_IF_ERROR(ValidateRetrievalOptions(options));
  TROUPE_RETURN_IF_ERROR(ValidateQuery(query, static_cast<int>(query.embedding.size())));
  const WeightedScoring& w = options.weighted;
  // 1. Cutoff and scores.
  TROUPE_ASSIGN_OR_RETURN(std::vector<RefCandidate> cands, ScoreAll(memories, query, w));

  // 2. Rank.
  const auto d_sem = [](const RefCandidate& c) { return c.d_sem; };
  const auto d_emo = [](const RefCandidate& c) { return c.d_emo; };
  double (*final_key)(const RefCandidate&) = nullptr;
  const auto weighted = [&](const RefCandidate& c) {
    return w.w_sem * c.cos_sem + w.w_emo * (1.0 - c.d_emo) + w.w_rec * c.recency +
           w.w_imp * c.importance / 10.0;
  };
  switch (options.strategy) {
    case RetrievalStrategy::kSemantic:
      SortBy(cands, d_sem);
      final_key = +d_sem;
      break;
    case RetrievalStrategy::kCombinedAdditive:
      final_key = [](const RefCandidate& c) { return c.d_sem + c.d_emo; };
      SortBy(cands, final_key);
      break;
    case RetrievalStrategy::kCombinedMultiplicative:
      final_key = [](const RefCandidate& c) { return c.d_sem * c.d_emo; };
      SortBy(cands, final_key);
      break;
    case RetrievalStrategy::kSemanticFirst:
      SortBy(cands, d_sem);
      if (cands.size() > size_t(options.pool)) cands.resize(options.pool);
      SortBy(cands, d_emo);
      final_key = +d_emo;
      break;
    case RetrievalStrategy::kEmotionFirst:
      SortBy(cands, d_emo);
      if (cands.size() > size_t(options.pool)) cands.resize(options.pool);
      SortBy(cands, d_sem);
      final_key = +d_sem;
      break;
    case RetrievalStrategy::kWeighted:
      SortBy(cands, [&](const RefCandidate& c) { return -weighted(c); });
      break;
  }

  // 3. Cut to k.
  std::vector<RetrievalHit> hits;
  for (size_t i = 0; i < cands.size() && i < size_t(options.k); ++i) {
    const RefCandidate& c = cands[i];
    const double score = final_key != nullptr ? final_key(c) : weighted(c);
    hits.push_back({.id = c.id,
                    .row = c.row,
                    .score = static_cast<float>(score),
                    .d_sem = static_cast<float>(c.d_sem),
                    .d_emo = static_cast<float>(c.d_emo)});
  }
  return hits;
}

}  // namespace troupe
