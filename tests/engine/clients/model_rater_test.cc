#include "engine/clients/model_rater.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/smol_engine.h"

namespace troupe {
namespace {

const float kNegInf = -INFINITY;

std::array<float, 9> AllMassOn(int digit) {
  std::array<float, 9> lp;
  lp.fill(kNegInf);
  lp[digit - 1] = 0;
  return lp;
}

TEST(ScoreFromDigitLogprobsTest, MapsTheExpectedDigitOntoOneToTen) {
  EXPECT_FLOAT_EQ(ScoreFromDigitLogprobs(AllMassOn(1)), 1.0f);
  EXPECT_FLOAT_EQ(ScoreFromDigitLogprobs(AllMassOn(9)), 10.0f);
  EXPECT_FLOAT_EQ(ScoreFromDigitLogprobs(AllMassOn(5)), 5.5f);
  std::array<float, 9> uniform;
  uniform.fill(std::log(1.0f / 9));
  EXPECT_NEAR(ScoreFromDigitLogprobs(uniform), 5.5f, 1e-5);
  // Mass outside the digits does not matter: only their relative weights do.
  std::array<float, 9> two_and_four;
  two_and_four.fill(kNegInf);
  two_and_four[1] = std::log(0.1f);
  two_and_four[3] = std::log(0.3f);
  EXPECT_NEAR(ScoreFromDigitLogprobs(two_and_four), 1 + (3.5 - 1) * 9 / 8, 1e-5);  // E = 3.5
  std::array<float, 9> none;
  none.fill(kNegInf);
  EXPECT_FLOAT_EQ(ScoreFromDigitLogprobs(none), 1.0f);
}

class ModelRaterTest : public testing::SmolEngineTest {};

TEST_F(ModelRaterTest, PromptsShareThePrefixUpToTheEmotion) {
  auto scorer = ModelRater::Create(engine_);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const std::string text = "The harbour lights came on one by one.";
  const std::string joy = (*scorer)->PromptFor(text, ModelRater::EmotionQuestion(Emotion::kJoy)).Flat();
  const std::string fear = (*scorer)->PromptFor(text, ModelRater::EmotionQuestion(Emotion::kFear)).Flat();
  const size_t shared = std::mismatch(joy.begin(), joy.end(), fear.begin()).first - joy.begin();
  EXPECT_GT(shared, joy.find(text) + text.size()) << "the text must come before the emotion";
  EXPECT_NE(joy.find("how much joy"), std::string::npos);
  EXPECT_NE(joy.find("<|im_start|>assistant"), std::string::npos) << "rendered with the chat template";
}

TEST_F(ModelRaterTest, ScoresAreInRangeAndDeterministic) {
  auto scorer = ModelRater::Create(engine_);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  auto first = (*scorer)->RateEmotion("I finally found my lost dog and I could not stop laughing!");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(ValidateEmotion(*first).ok()) << ValidateEmotion(*first);
  // Not all equal: the model's digit distribution differs between the questions.
  EXPECT_NE(*std::min_element(first->begin(), first->end()),
            *std::max_element(first->begin(), first->end()));
  auto again = (*scorer)->RateEmotion("I finally found my lost dog and I could not stop laughing!");
  ASSERT_TRUE(again.ok());
  for (int e = 0; e < kNumEmotions; ++e) EXPECT_NEAR((*first)[e], (*again)[e], 1e-3) << e;
}

// The eight internal requests of several threads at once all complete, and an over-long text
// is cut rather than refused.
TEST_F(ModelRaterTest, ConcurrentCallersAndLongTexts) {
  ModelRaterOptions options;
  options.max_text_bytes = 300;
  auto scorer = ModelRater::Create(engine_, options);
  ASSERT_TRUE(scorer.ok());
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "The storm broke the mast and the crew wept. ";
  std::vector<absl::StatusOr<EmotionVector>> results(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { results[t] = (*scorer)->RateEmotion(t == 0 ? long_text : "We won the cup!"); });
  }
  for (std::thread& th : threads) th.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(ValidateEmotion(*r).ok());
  }
  for (int e = 0; e < kNumEmotions; ++e) EXPECT_NEAR((*results[1])[e], (*results[2])[e], 1e-3);
}

TEST_F(ModelRaterTest, ImportanceIsInRange) {
  auto rater = ModelRater::Create(engine_);
  ASSERT_TRUE(rater.ok());
  auto importance = (*rater)->RateImportance("User: Will you marry me?\nMara: Yes. A thousand times yes.");
  ASSERT_TRUE(importance.ok()) << importance.status();
  EXPECT_GE(*importance, 1.0f);
  EXPECT_LE(*importance, 10.0f);
}

}  // namespace
}  // namespace troupe
