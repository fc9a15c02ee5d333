// Emotional-RAG retrieval: ranks one scope's memories for a query by semantic and emotional
// distance (Emotional RAG's five modes, exactly) or by a weighted linear score, after the
// TimeChara point-in-time cutoff. Formulas: retrieval_options.h and docs/memory.md.
// Plain functions; thread-safe as far as their arguments are (see MemoryIndex).
#pragma once

#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/memory/memory_index.h"
#include "engine/memory/memory_unit.h"
#include "engine/memory/retrieval_options.h"

namespace troupe {

// Ranks `index` for `query` under `options` and returns the best min(k, passing) hits, best
// first (sequential strategies: min(k, pool, passing)).
//   1. Cutoff: a memory with story_time > query.point_in_time is never considered; timeless
//      memories and every memory when point_in_time is nullopt are.
//   2. Rank by the strategy's key (retrieval_options.h); equal keys order by id ascending.
// Fast path: one pass over the contiguous [size, dim] embedding matrix with a bounded heap of
// the best k (or pool) in the result vector, so nothing is allocated but the result;
// kEmotionFirst computes d_sem only for its pool. Matches RetrieveReference up to float
// rounding (near-ties within ~1e-5 may swap).
// kInvalidArgument: options fail ValidateRetrievalOptions, or the query's embedding fails
// ValidateEmbedding(dim) or its emotion fails ValidateEmotion.
[[nodiscard]] absl::StatusOr<std::vector<RetrievalHit>> Retrieve(const MemoryIndex& index,
                                                                 const RetrievalQuery& query,
                                                                 const RetrievalOptions& options);

// The reference: the same contract over a span of units, written as plain loops with double
// arithmetic and full sorts, for tests to compare Retrieve against. Hit rows index `memories`.
// Also kInvalidArgument when a memory's embedding (dim = the query's) or emotion is invalid.
[[nodiscard]] absl::StatusOr<std::vector<RetrievalHit>> RetrieveReference(
    std::span<const MemoryUnit> memories, const RetrievalQuery& query,
    const RetrievalOptions& options);

}  // namespace troupe
