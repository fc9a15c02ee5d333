// Retrieval metrics on hand-computed rankings.
#include "engine/memory/retrieval_eval.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

MemoryUnit Unit(MemoryId id, const EmotionVector& emotion, std::optional<int64_t> story_time) {
  MemoryUnit m;
  m.id = id;
  m.emotion = emotion;
  m.story_time = story_time;
  return m;
}

constexpr EmotionVector kJoy = {9, 3, 1, 1, 1, 1, 1, 3};
constexpr EmotionVector kFear = {1, 3, 9, 3, 1, 1, 1, 1};

// G_sem = {1, 2, 3}, G_emo = {2}: gains 1 -> 1, 2 -> 2, 3 -> 1, 9 -> 0.
const RetrievalLabels kLabels = {.semantic = {1, 2, 3}, .emotional = {2}};

TEST(RetrievalEvalTest, GradedMetricsOnAHandComputedRanking) {
  const MemoryUnit m2 = Unit(2, kJoy, 10), m9 = Unit(9, kFear, 50), m1 = Unit(1, kJoy, 3);
  const std::vector<const MemoryUnit*> ranked = {&m2, &m9, &m1};
  const QueryMetrics q = EvaluateRanking(ranked, kJoy, /*point_in_time=*/40, kLabels, /*k=*/3);
  // DCG = 2/log2(2) + 0 + 1/log2(4) = 2.5; ideal gains 2, 1, 1: 2 + 1/log2(3) + 1/2.
  EXPECT_NEAR(q.ndcg, 2.5 / (2.5 + 1.0 / std::log2(3.0)), 1e-12);
  EXPECT_NEAR(q.recall, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(q.semantic_recall, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(q.mrr, 1.0);
  EXPECT_NEAR(q.congruence, (1.0 + 36.0 / 104.0 + 1.0) / 3.0, 1e-6);
  EXPECT_EQ(q.time_violations, 1);  // memory 9 is from story time 50 > 40
}

TEST(RetrievalEvalTest, OnlyTheFirstKCountAndRecallIsCapped) {
  const MemoryUnit m9 = Unit(9, kFear, std::nullopt), m3 = Unit(3, kJoy, std::nullopt);
  const std::vector<const MemoryUnit*> ranked = {&m9, &m3};
  const QueryMetrics k1 = EvaluateRanking(ranked, kJoy, std::nullopt, kLabels, 1);
  EXPECT_EQ(k1.recall, 0.0);
  EXPECT_EQ(k1.mrr, 0.0);
  EXPECT_NEAR(k1.congruence, 36.0 / 104.0, 1e-6);
  const QueryMetrics k2 = EvaluateRanking(ranked, kJoy, std::nullopt, kLabels, 2);
  EXPECT_DOUBLE_EQ(k2.recall, 0.5);  // 1 of min(|R| = 3, K = 2)
  EXPECT_DOUBLE_EQ(k2.mrr, 0.5);
  EXPECT_NEAR(k2.ndcg, (1.0 / std::log2(3.0)) / (2.0 + 1.0 / std::log2(3.0)), 1e-12);
  EXPECT_EQ(k2.time_violations, 0);  // timeless memories never violate
}

TEST(RetrievalEvalTest, EmptyRankingsAndEmptyGoldScoreZero) {
  const QueryMetrics empty = EvaluateRanking({}, kJoy, 5, kLabels, 10);
  EXPECT_EQ(empty.recall, 0.0);
  EXPECT_EQ(empty.ndcg, 0.0);
  EXPECT_EQ(empty.congruence, 0.0);
  const MemoryUnit m1 = Unit(1, kJoy, 1);
  const std::vector<const MemoryUnit*> ranked = {&m1};
  const QueryMetrics no_gold = EvaluateRanking(ranked, kJoy, 5, {}, 10);
  EXPECT_EQ(no_gold.recall, 0.0);
  EXPECT_EQ(no_gold.semantic_recall, 0.0);
  EXPECT_NEAR(no_gold.congruence, 1.0, 1e-6);
}

TEST(RetrievalEvalTest, AverageTakesMeansAndSumsViolations) {
  const std::vector<QueryMetrics> per_query = {{.recall = 1.0,
                                                .ndcg = 0.5,
                                                .congruence = 0.9,
                                                .semantic_recall = 1.0,
                                                .mrr = 1.0,
                                                .time_violations = 2},
                                               {.recall = 0.0,
                                                .ndcg = 0.25,
                                                .congruence = 0.7,
                                                .semantic_recall = 0.5,
                                                .mrr = 0.5,
                                                .time_violations = 1}};
  const RetrievalMetrics avg = Average(per_query);
  EXPECT_EQ(avg.num_queries, 2);
  EXPECT_DOUBLE_EQ(avg.recall, 0.5);
  EXPECT_DOUBLE_EQ(avg.ndcg, 0.375);
  EXPECT_DOUBLE_EQ(avg.congruence, 0.8);
  EXPECT_DOUBLE_EQ(avg.semantic_recall, 0.75);
  EXPECT_DOUBLE_EQ(avg.mrr, 0.75);
  EXPECT_EQ(avg.time_violations, 3);
  EXPECT_EQ(Average({}).num_queries, 0);
}

}  // namespace
}  // namespace troupe
