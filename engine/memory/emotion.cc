// Emotion-vector arithmetic (emotion.h).
#include "engine/memory/emotion.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "common/check.h"

namespace troupe {

Emotion DominantEmotion(const EmotionVector& v) {
  int best = 0;
  for (int i = 1; i < kNumEmotions; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<Emotion>(best);
}

absl::Status ValidateEmotion(const EmotionVector& v) {
  for (int i = 0; i < kNumEmotions; ++i) {
    // Written so that NaN fails too.
    if (!(std::isfinite(v[i]) && v[i] >= kEmotionMin && v[i] <= kEmotionMax)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "emotion %s = %g is outside [%g, %g]", kEmotionNames[i], v[i], kEmotionMin, kEmotionMax));
    }
  }
  return absl::OkStatus();
}

float EmotionDot(const EmotionVector& a, const EmotionVector& b) {
  float sum = 0.0f;
  for (int i = 0; i < kNumEmotions; ++i) sum += a[i] * b[i];
  return sum;
}

float EmotionNorm(const EmotionVector& v) { return std::sqrt(EmotionDot(v, v)); }

float EmotionCosine(const EmotionVector& a, const EmotionVector& b) {
  const float denom = EmotionNorm(a) * EmotionNorm(b);
  TROUPE_DCHECK(denom > 0.0f);
  return EmotionDot(a, b) / denom;
}

EmotionVector UpdateMood(const EmotionVector& mood, const EmotionVector& turn, float beta) {
  TROUPE_DCHECK(beta >= 0.0f && beta <= 1.0f);
  EmotionVector out;
  for (int i = 0; i < kNumEmotions; ++i) {
    // The clamp only absorbs float rounding (10 * 0.3f + 10 * 0.7f may land just above 10).
    out[i] = std::clamp(beta * mood[i] + (1.0f - beta) * turn[i], kEmotionMin, kEmotionMax);
  }
  return out;
}

absl::Status ValidateMoodBeta(float beta) {
  if (!(std::isfinite(beta) && beta >= 0.0f && beta <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrFormat("mood beta %g is outside [0, 1]", beta));
  }
  return absl::OkStatus();
}

}  // namespace troupe
