// In-memory search index over one scope's memories (one MemoryIndex per session, per
// user x character pair, per character): the retrieval fields of each MemoryUnit in contiguous
// columns, so a search streams one [size, dim] float matrix. Texts stay with the caller (the
// store), which maps hit ids back to them.
//
// Thread-safety: not internally synchronised. Any number of threads may call the const methods
// (Search included) at once; Add, SetRating, Remove, Reserve and Clear need exclusive access (the owning
// store's lock).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/memory/emotion.h"
#include "engine/memory/memory_unit.h"
#include "engine/memory/retrieval_options.h"

namespace troupe {

// How far an embedding's L2 norm may stray from 1 (normalised float vectors are within ~1e-6).
inline constexpr float kEmbeddingNormTolerance = 1e-3f;

// The story_times() value of a timeless memory. As the smallest int64 it is <= every point in
// time, so the cutoff test `story_time <= point_in_time` passes it without a branch.
inline constexpr int64_t kTimelessStoryTime = std::numeric_limits<int64_t>::min();

// OK if `embedding` has `dim` finite values and unit L2 norm (within kEmbeddingNormTolerance);
// kInvalidArgument otherwise.
[[nodiscard]] absl::Status ValidateEmbedding(std::span<const float> embedding, int dim);

class MemoryIndex {
 public:
  // REQUIRES: dim > 0.
  explicit MemoryIndex(int dim);
  MemoryIndex(const MemoryIndex&) = delete;
  MemoryIndex& operator=(const MemoryIndex&) = delete;
  MemoryIndex(MemoryIndex&&) = default;
  MemoryIndex& operator=(MemoryIndex&&) = default;

  int dim() const { return dim_; }
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  bool Contains(MemoryId id) const { return row_of_.contains(id); }
  // The row holding `id`, or nullopt. Rows move on Remove.
  std::optional<int64_t> RowOf(MemoryId id) const;

  // Makes room for n memories, so Adds up to n do not reallocate.
  void Reserve(int64_t n);
  // Copies the unit's retrieval fields (not its text) into a new last row.
  // kInvalidArgument: embedding of the wrong size, non-finite or not unit norm; emotion outside
  // 1..10; importance outside 1..10 or non-finite. kAlreadyExists: the id is present.
  [[nodiscard]] absl::Status Add(const MemoryUnit& unit);
  // Replaces a memory's emotion and importance (its rating, after a provisional one).
  // kInvalidArgument as Add; kNotFound if absent.
  [[nodiscard]] absl::Status SetRating(MemoryId id, const EmotionVector& emotion, float importance);
  // Drops the memory; the last row moves into its place (O(dim)). kNotFound if absent.
  [[nodiscard]] absl::Status Remove(MemoryId id);
  void Clear();

  // Ranks this index's memories for `query` (retriever.h: Retrieve). Allocates only the result.
  // kInvalidArgument: bad options, or a query embedding/emotion that Add would reject.
  [[nodiscard]] absl::StatusOr<std::vector<RetrievalHit>> Search(
      const RetrievalQuery& query, const RetrievalOptions& options) const;

  // ---- columns, for the retriever; each has size() entries, valid until the next mutation ----
  const float* embedding(int64_t row) const { return embeddings_.data() + row * dim_; }  // [dim]
  std::span<const MemoryId> ids() const { return ids_; }
  std::span<const EmotionVector> emotions() const { return emotions_; }
  std::span<const float> emotion_norms() const { return emotion_norms_; }      // EmotionNorm(v)
  std::span<const float> embedding_norms() const { return embedding_norms_; }  // ||e||, ~1
  std::span<const int64_t> story_times() const { return story_times_; }  // or kTimelessStoryTime
  std::span<const float> importance() const { return importance_; }      // 1..10
  std::span<const int64_t> wall_times_ms() const { return wall_times_ms_; }

 private:
  // Constant after construction.
  int dim_;

  std::vector<float> embeddings_;  // [size, dim], row-major
  std::vector<MemoryId> ids_;
  std::vector<EmotionVector> emotions_;
  std::vector<float> emotion_norms_;
  std::vector<float> embedding_norms_;
  std::vector<int64_t> story_times_;
  std::vector<float> importance_;
  std::vector<int64_t> wall_times_ms_;
  std::unordered_map<MemoryId, int64_t> row_of_;
};

}  // namespace troupe
