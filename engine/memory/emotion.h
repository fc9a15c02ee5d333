// Emotion vectors of the emotional-RAG memory (docs/memory.md): eight Plutchik scores, the
// cosine-based emotional distance the retriever ranks by, and the session-mood average.
// Plain functions on values; safe from any thread.
#pragma once

#include <array>
#include <string_view>

#include "absl/status/status.h"

namespace troupe {

inline constexpr int kNumEmotions = 8;

// Plutchik's basic emotions in Emotional RAG's fixed order (its "acceptance" is Plutchik's
// "trust"). The order is also the wheel's, so index i's neighbours are i +- 1 (mod 8) and its
// opposite is i + 4 (mod 8).
enum class Emotion : int {
  kJoy = 0,
  kAcceptance = 1,
  kFear = 2,
  kSurprise = 3,
  kSadness = 4,
  kDisgust = 5,
  kAnger = 6,
  kAnticipation = 7,
};

inline constexpr std::array<std::string_view, kNumEmotions> kEmotionNames = {
    "joy", "acceptance", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"};

// One score per Emotion, indexed by static_cast<int>(Emotion). Scale 1 (absent) .. 10 (maximal),
// as the paper's LLM scorer emits; a dimension nobody scored is 1.
using EmotionVector = std::array<float, kNumEmotions>;

inline constexpr float kEmotionMin = 1.0f;
inline constexpr float kEmotionMax = 10.0f;

// The "nothing felt" vector: every dimension 1 (the paper's default for unscored dimensions).
inline constexpr EmotionVector kNeutralEmotion = {1, 1, 1, 1, 1, 1, 1, 1};

inline std::string_view EmotionName(Emotion e) { return kEmotionNames[static_cast<int>(e)]; }

// The emotion with the highest score; ties go to the lowest index (joy before acceptance ...).
Emotion DominantEmotion(const EmotionVector& v);

// OK if every score is finite and in [kEmotionMin, kEmotionMax]; kInvalidArgument naming the
// first bad dimension otherwise. Valid vectors are strictly positive, so their norms are >= sqrt(8)
// and the cosine below is always defined.
[[nodiscard]] absl::Status ValidateEmotion(const EmotionVector& v);

// sum_i a_i * b_i, summed in index order (float).
float EmotionDot(const EmotionVector& a, const EmotionVector& b);
// sqrt(EmotionDot(v, v)).
float EmotionNorm(const EmotionVector& v);

// cos(a, b) = EmotionDot(a, b) / (EmotionNorm(a) * EmotionNorm(b)). For valid vectors it lies in
// (0, 1]. REQUIRES: neither vector is all zeros (true for every valid vector).
float EmotionCosine(const EmotionVector& a, const EmotionVector& b);

// The paper's emotional distance d_emo = 1 - cos(a, b) (scipy.spatial.distance.cosine), in
// [0, 1) for valid vectors; 0 = same direction. REQUIRES: as EmotionCosine.
inline float EmotionDistance(const EmotionVector& a, const EmotionVector& b) {
  return 1.0f - EmotionCosine(a, b);
}

// One step of the session mood, an exponential moving average of the turns' vectors:
// returns beta * mood + (1 - beta) * turn, per dimension. beta = 0 forgets the past, beta = 1
// ignores the turn. Valid inputs give a valid result (a convex combination stays in [1, 10];
// the result is clamped there against float rounding).
// REQUIRES: 0 <= beta <= 1 (validate user-supplied betas with ValidateMoodBeta first).
EmotionVector UpdateMood(const EmotionVector& mood, const EmotionVector& turn, float beta);

// OK if beta is finite and in [0, 1]; kInvalidArgument otherwise.
[[nodiscard]] absl::Status ValidateMoodBeta(float beta);

}  // namespace troupe
