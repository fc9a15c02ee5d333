// Contiguous column storage for one scope's memories (memory_index.h).
#include "engine/memory/memory_index.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "engine/memory/retriever.h"

namespace troupe {

absl::Status ValidateEmbedding(std::span<const float> embedding, int dim) {
  if (static_cast<int64_t>(embedding.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrFormat("embedding has %d values, the index expects %d", embedding.size(), dim));
  }
  double sum_sq = 0.0;
  for (float x : embedding) {
    if (!std::isfinite(x)) return absl::InvalidArgumentError("embedding has a non-finite value");
    sum_sq += static_cast<double>(x) * x;
  }
  const double norm = std::sqrt(sum_sq);
  if (std::abs(norm - 1.0) > kEmbeddingNormTolerance) {
    return absl::InvalidArgumentError(
        absl::StrFormat("embedding norm %g is not 1 (normalise it first)", norm));
  }
  return absl::OkStatus();
}

MemoryIndex::MemoryIndex(int dim) : dim_(dim) { TROUPE_CHECK(dim > 0); }

std::optional<int64_t> MemoryIndex::RowOf(MemoryId id) const {
  const auto it = row_of_.find(id);
  if (it == row_of_.end()) return std::nullopt;
  return it->second;
}

void MemoryIndex::Reserve(int64_t n) {
  embeddings_.reserve(static_cast<size_t>(n) * dim_);
  ids_.reserve(n);
  emotions_.reserve(n);
  emotion_norms_.reserve(n);
  embedding_norms_.reserve(n);
  story_times_.reserve(n);
  importance_.reserve(n);
  wall_times_ms_.reserve(n);
  row_of_.reserve(n);
}

absl::Status MemoryIndex::Add(const MemoryUnit& unit) {
  TROUPE_RETURN_IF_ERROR(ValidateEmbedding(unit.embedding, dim_));
  TROUPE_RETURN_IF_ERROR(ValidateEmotion(unit.emotion));
  if (!(std::isfinite(unit.importance) && unit.importance >= kImportanceMin &&
        unit.importance <= kImportanceMax)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "importance %g is outside [%g, %g]", unit.importance, kImportanceMin, kImportanceMax));
  }
  if (row_of_.contains(unit.id)) {
    return absl::AlreadyExistsError(absl::StrFormat("memory %d is already indexed", unit.id));
  }
  double sum_sq = 0.0;
  for (float x : unit.embedding) sum_sq += static_cast<double>(x) * x;

  row_of_.emplace(unit.id, size());
  embeddings_.insert(embeddings_.end(), unit.embedding.begin(), unit.embedding.end());
  ids_.push_back(unit.id);
  emotions_.push_back(unit.emotion);
  emotion_norms_.push_back(EmotionNorm(unit.emotion));
  embedding_norms_.push_back(static_cast<float>(std::sqrt(sum_sq)));
  story_times_.push_back(unit.story_time.value_or(kTimelessStoryTime));
  importance_.push_back(unit.importance);
  wall_times_ms_.push_back(unit.wall_time_ms);
  return absl::OkStatus();
}

absl::Status MemoryIndex::SetRating(MemoryId id, const EmotionVector& emotion, float importance) {
  TROUPE_RETURN_IF_ERROR(ValidateEmotion(emotion));
  if (!(std::isfinite(importance) && importance >= kImportanceMin && importance <= kImportanceMax)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("importance %g is outside [%g, %g]", importance, kImportanceMin, kImportanceMax));
  }
  const auto it = row_of_.find(id);
  if (it == row_of_.end()) return absl::NotFoundError(absl::StrFormat("memory %d is not indexed", id));
  emotions_[it->second] = emotion;
  emotion_norms_[it->second] = EmotionNorm(emotion);
  importance_[it->second] = importance;
  return absl::OkStatus();
}

absl::Status MemoryIndex::Remove(MemoryId id) {
  const auto it = row_of_.find(id);
  if (it == row_of_.end()) {
    return absl::NotFoundError(absl::StrFormat("memory %d is not indexed", id));
  }
  const int64_t row = it->second;
  const int64_t last = size() - 1;
  row_of_.erase(it);
  if (row != last) {
    std::copy_n(embeddings_.begin() + last * dim_, dim_, embeddings_.begin() + row * dim_);
    ids_[row] = ids_[last];
    emotions_[row] = emotions_[last];
    emotion_norms_[row] = emotion_norms_[last];
    embedding_norms_[row] = embedding_norms_[last];
    story_times_[row] = story_times_[last];
    importance_[row] = importance_[last];
    wall_times_ms_[row] = wall_times_ms_[last];
    row_of_[ids_[row]] = row;
  }
  embeddings_.resize(last * dim_);
  ids_.pop_back();
  emotions_.pop_back();
  emotion_norms_.pop_back();
  embedding_norms_.pop_back();
  story_times_.pop_back();
  importance_.pop_back();
  wall_times_ms_.pop_back();
  return absl::OkStatus();
}

void MemoryIndex::Clear() {
  embeddings_.clear();
  ids_.clear();
  emotions_.clear();
  emotion_norms_.clear();
  embedding_norms_.clear();
  story_times_.clear();
  importance_.clear();
  wall_times_ms_.clear();
  row_of_.clear();
}

absl::StatusOr<std::vector<RetrievalHit>> MemoryIndex::Search(
    const RetrievalQuery& query, const RetrievalOptions& options) const {
  return Retrieve(*this, query, options);
}

}  // namespace troupe
