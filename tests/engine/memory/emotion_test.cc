// Emotion vectors: names and order, validation, cosine distance, dominant emotion, mood average.
#include "engine/memory/emotion.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(EmotionTest, NamesFollowThePapersOrder) {
  EXPECT_EQ(EmotionName(Emotion::kJoy), "joy");
  EXPECT_EQ(EmotionName(Emotion::kAcceptance), "acceptance");
  EXPECT_EQ(EmotionName(Emotion::kFear), "fear");
  EXPECT_EQ(EmotionName(Emotion::kSurprise), "surprise");
  EXPECT_EQ(EmotionName(Emotion::kSadness), "sadness");
  EXPECT_EQ(EmotionName(Emotion::kDisgust), "disgust");
  EXPECT_EQ(EmotionName(Emotion::kAnger), "anger");
  EXPECT_EQ(EmotionName(Emotion::kAnticipation), "anticipation");
}

TEST(EmotionTest, ValidationAcceptsOneToTenOnly) {
  EXPECT_TRUE(ValidateEmotion(kNeutralEmotion).ok());
  EXPECT_TRUE(ValidateEmotion({10, 1, 5.5f, 1, 1, 1, 1, 10}).ok());
  for (float bad : {0.0f, 0.99f, 10.01f, -3.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    EmotionVector v = kNeutralEmotion;
    v[6] = bad;
    const absl::Status s = ValidateEmotion(v);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("anger"), std::string::npos) << s.message();
  }
}

TEST(EmotionTest, CosineAndDistance) {
  const EmotionVector joy = {9, 3, 1, 1, 1, 1, 1, 3};
  const EmotionVector fear = {1, 3, 9, 3, 1, 1, 1, 1};
  EXPECT_NEAR(EmotionCosine(joy, joy), 1.0, 1e-6);
  EXPECT_NEAR(EmotionDistance(joy, joy), 0.0, 1e-6);
  EXPECT_NEAR(EmotionCosine(joy, fear), 36.0 / 104.0, 1e-6);  // both norms sqrt(104)
  EXPECT_NEAR(EmotionDistance(joy, fear), 1.0 - 36.0 / 104.0, 1e-6);
  EXPECT_FLOAT_EQ(EmotionCosine(joy, fear), EmotionCosine(fear, joy));
  // Scale-free: the cosine ignores a common factor.
  const EmotionVector half = {4.5f, 1.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 1.5f};
  EXPECT_NEAR(EmotionCosine(joy, half), 1.0, 1e-6);
  EXPECT_NEAR(EmotionNorm(joy), std::sqrt(104.0), 1e-5);
  EXPECT_FLOAT_EQ(EmotionDot(joy, fear), 36.0f);
}

TEST(EmotionTest, DominantIsTheHighestAndTiesGoToTheLowerIndex) {
  EXPECT_EQ(DominantEmotion({1, 2, 3, 9, 1, 1, 1, 1}), Emotion::kSurprise);
  EXPECT_EQ(DominantEmotion({1, 7, 1, 1, 1, 1, 7, 1}), Emotion::kAcceptance);
  EXPECT_EQ(DominantEmotion(kNeutralEmotion), Emotion::kJoy);
}

TEST(EmotionTest, MoodIsAnExponentialMovingAverage) {
  const EmotionVector mood = kNeutralEmotion;
  const EmotionVector turn = {9, 5, 1, 1, 1, 1, 1, 3};
  const EmotionVector m = UpdateMood(mood, turn, 0.75f);
  EXPECT_FLOAT_EQ(m[0], 0.75f * 1 + 0.25f * 9);  // 3
  EXPECT_FLOAT_EQ(m[1], 2.0f);
  EXPECT_FLOAT_EQ(m[7], 1.5f);
  EXPECT_EQ(UpdateMood(mood, turn, 0.0f), turn);
  EXPECT_EQ(UpdateMood(mood, turn, 1.0f), mood);
  // Repeated turns converge on the turn's vector and stay valid.
  EmotionVector x = mood;
  for (int i = 0; i < 200; ++i) x = UpdateMood(x, turn, 0.9f);
  EXPECT_TRUE(ValidateEmotion(x).ok());
  EXPECT_NEAR(x[0], 9.0f, 1e-3);
  const EmotionVector top = {10, 10, 10, 10, 10, 10, 10, 10};
  EXPECT_TRUE(ValidateEmotion(UpdateMood(top, top, 0.3f)).ok());  // no rounding past 10
}

TEST(EmotionTest, MoodBetaMustBeAFraction) {
  EXPECT_TRUE(ValidateMoodBeta(0.0f).ok());
  EXPECT_TRUE(ValidateMoodBeta(0.7f).ok());
  EXPECT_TRUE(ValidateMoodBeta(1.0f).ok());
  EXPECT_FALSE(ValidateMoodBeta(-0.1f).ok());
  EXPECT_FALSE(ValidateMoodBeta(1.5f).ok());
  EXPECT_FALSE(ValidateMoodBeta(std::numeric_limits<float>::quiet_NaN()).ok());
}

}  // namespace
}  // namespace troupe
