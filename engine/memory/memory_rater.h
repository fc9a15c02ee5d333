// Rates a memory's text: its emotion (8 Plutchik scores) and its importance, both on 1..10.
// The memory write path and emotion-keyed recall call it; ModelRater (model_rater.h) asks the
// served model, and other raters (a classifier, an external service) can take its place.
// Clients may also give emotion vectors explicitly, which skips the rater.
#pragma once

#include <vector>

#include <optional>

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/memory/emotion.h"

namespace troupe {

class MemoryRater {
 public:
  virtual ~MemoryRater() = default;
  // Thread-safe; may block for as long as the rating takes.
  [[nodiscard]] virtual absl::StatusOr<EmotionVector> RateEmotion(std::string_view text) = 0;
  [[nodiscard]] virtual absl::StatusOr<float> RateImportance(std::string_view text) = 0;

  struct Rating {
    EmotionVector emotion{};
    float importance = 0;
  };
  struct RatingInput {
    std::string_view text;
    std::optional<EmotionVector> emotion;  // known (given by the caller): only importance is rated
  };
  // Rates several texts, one result per input, in order; an implementation may put all their
  // questions to the model at once (ModelRater does). The default rates them one after another.
  [[nodiscard]] virtual std::vector<absl::StatusOr<Rating>> RateAll(const std::vector<RatingInput>& inputs);
};

inline std::vector<absl::StatusOr<MemoryRater::Rating>> MemoryRater::RateAll(const std::vector<RatingInput>& inputs) {
  std::vector<absl::StatusOr<Rating>> out;
  for (const RatingInput& input : inputs) {
    Rating rating;
    if (input.emotion) {
      rating.emotion = *input.emotion;
    } else {
      absl::StatusOr<EmotionVector> emotion = RateEmotion(input.text);
      if (!emotion.ok()) {
        out.push_back(emotion.status());
        continue;
      }
      rating.emotion = *emotion;
    }
    absl::StatusOr<float> importance = RateImportance(input.text);
    if (!importance.ok()) {
      out.push_back(importance.status());
      continue;
    }
    rating.importance = *importance;
    out.push_back(rating);
  }
  return out;
}

}  // namespace troupe
