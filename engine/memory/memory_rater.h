// Rates a memory's text: its emotion (8 Plutchik scores) and its importance, both on 1..10.
// The memory write path and emotion-keyed recall call it; ModelRater (model_rater.h) asks the
// served model, and other raters (a classifier, an external service) can take its place.
// Clients may also give emotion vectors explicitly, which skips the rater.
#pragma once

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
};

}  // namespace troupe
