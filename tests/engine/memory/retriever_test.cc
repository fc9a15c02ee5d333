// Retrieval strategies on small hand-made cases (2-d embeddings at known angles, so d_sem =
// 2 sin(angle / 2)), the time filter, ties, the weighted formula, validation, index upkeep, and
// the fast path against the reference on random data and on the labelled set.
#include "engine/memory/retriever.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/memory/emotion.h"
#include "engine/memory/memory_index.h"
#include "engine/memory/memory_unit.h"
#include "engine/memory/retrieval_options.h"
#include "gtest/gtest.h"
#include "tests/engine/memory/retrieval_set_loader.h"

namespace troupe {
namespace {

constexpr RetrievalStrategy kAllStrategies[] = {RetrievalStrategy::kSemantic,
                                                RetrievalStrategy::kCombinedAdditive,
                                                RetrievalStrategy::kCombinedMultiplicative,
                                                RetrievalStrategy::kSemanticFirst,
                                                RetrievalStrategy::kEmotionFirst,
                                                RetrievalStrategy::kWeighted};

constexpr EmotionVector kJoyful = {9, 3, 1, 1, 1, 1, 1, 3};
constexpr EmotionVector kAlmostJoyful = {8, 3, 1, 1, 1, 1, 1, 3};
constexpr EmotionVector kFearful = {1, 3, 9, 3, 1, 1, 1, 1};

// Unit vector at `angle` radians from the x axis.
std::vector<float> AtAngle(double angle) {
  return {static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle))};
}

// L2 distance between unit vectors `angle` apart.
double Chord(double angle) { return 2.0 * std::sin(angle / 2.0); }

MemoryUnit Mem(MemoryId id, double angle, const EmotionVector& emotion,
               std::optional<int64_t> story_time = std::nullopt) {
  MemoryUnit m;
  m.id = id;
  m.text = "memory " + std::to_string(id);
  m.embedding = AtAngle(angle);
  m.emotion = emotion;
  m.story_time = story_time;
  return m;
}

RetrievalOptions Options(RetrievalStrategy strategy, int k = 10, int pool = 20) {
  RetrievalOptions o;
  o.strategy = strategy;
  o.k = k;
  o.pool = pool;
  return o;
}

std::vector<MemoryId> Ids(const std::vector<RetrievalHit>& hits) {
  std::vector<MemoryId> ids;
  for (const RetrievalHit& h : hits) ids.push_back(h.id);
  return ids;
}

// Same ranks, up to float rounding: the scores agree at every rank, and ids differ only where
// the reference's scores make it a near-tie.
void ExpectSameRanking(const std::vector<RetrievalHit>& fast, const std::vector<RetrievalHit>& ref,
                       double tol = 1e-5) {
  ASSERT_EQ(fast.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_NEAR(fast[i].score, ref[i].score, tol) << "rank " << i;
    EXPECT_NEAR(fast[i].d_sem, ref[i].d_sem, tol) << "rank " << i;
    EXPECT_NEAR(fast[i].d_emo, ref[i].d_emo, tol) << "rank " << i;
    if (fast[i].id == ref[i].id) continue;
    bool near_tie = false;
    for (size_t j = 0; j < ref.size(); ++j) {
      if (ref[j].id == fast[i].id && std::abs(ref[j].score - ref[i].score) <= tol) near_tie = true;
    }
    if (std::abs(fast[i].score - ref.back().score) <= tol) near_tie = true;  // at the cut
    EXPECT_TRUE(near_tie) << "rank " << i << ": fast id " << fast[i].id << ", reference id "
                          << ref[i].id;
  }
}

// Runs the index and the reference on the same memories, checks they agree, returns the hits.
std::vector<RetrievalHit> Search(const std::vector<MemoryUnit>& memories,
                                 const RetrievalQuery& query, const RetrievalOptions& options) {
  MemoryIndex index(static_cast<int>(query.embedding.size()));
  for (const MemoryUnit& m : memories) EXPECT_TRUE(index.Add(m).ok());
  absl::StatusOr<std::vector<RetrievalHit>> fast = index.Search(query, options);
  absl::StatusOr<std::vector<RetrievalHit>> ref = RetrieveReference(memories, query, options);
  EXPECT_TRUE(fast.ok()) << fast.status();
  EXPECT_TRUE(ref.ok()) << ref.status();
  if (!fast.ok() || !ref.ok()) return {};
  ExpectSameRanking(*fast, *ref);
  return *fast;
}

struct QueryHolder {
  std::vector<float> embedding = AtAngle(0.0);
  RetrievalQuery query{
      .embedding = embedding, .emotion = kJoyful, .point_in_time = {}, .now_ms = 0};
};

// ---- each strategy's exact ordering ----

TEST(RetrieverTest, SemanticRanksByEuclideanDistance) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {Mem(1, 0.9, kJoyful), Mem(2, 0.1, kFearful),
                                        Mem(3, -0.5, kJoyful), Mem(4, 2.0, kJoyful)};
  const std::vector<RetrievalHit> hits =
      Search(mems, q.query, Options(RetrievalStrategy::kSemantic, /*k=*/3));
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{2, 3, 1}));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_NEAR(hits[0].score, Chord(0.1), 1e-6);
  EXPECT_NEAR(hits[1].score, Chord(0.5), 1e-6);
  EXPECT_NEAR(hits[2].d_sem, Chord(0.9), 1e-6);
  EXPECT_NEAR(hits[0].d_emo, EmotionDistance(kJoyful, kFearful), 1e-6);
  EXPECT_EQ(hits[1].row, 2);  // rows index the searched memories
}

// d_emo(joy, fear) = 1 - 36/104 = 0.654; d_emo(joy, neutral) = 1 - 20/sqrt(104 * 8) = 0.307.
TEST(RetrieverTest, CombinedAdditiveSumsBothDistances) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {
      Mem(1, 0.1, kFearful),         // 0.100 + 0.654 = 0.754
      Mem(2, 0.4, kJoyful),          // 0.397 + 0     = 0.397
      Mem(3, 0.3, kNeutralEmotion),  // 0.299 + 0.307 = 0.606
  };
  const std::vector<RetrievalHit> hits =
      Search(mems, q.query, Options(RetrievalStrategy::kCombinedAdditive));
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{2, 3, 1}));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_NEAR(hits[2].score, Chord(0.1) + EmotionDistance(kJoyful, kFearful), 1e-6);
  EXPECT_NEAR(hits[1].score, Chord(0.3) + EmotionDistance(kJoyful, kNeutralEmotion), 1e-6);
  // Semantic-only would have ranked them 1, 3, 2.
  EXPECT_EQ(Ids(Search(mems, q.query, Options(RetrievalStrategy::kSemantic))),
            (std::vector<MemoryId>{1, 3, 2}));
}

TEST(RetrieverTest, CombinedMultiplicativeLetsAnExactEmotionOutrankMeaning) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {
      Mem(1, 0.05, kFearful),  // 0.050 * 0.654 = 0.033
      Mem(2, 2.5, kJoyful),    // 1.898 * 0     = 0: same emotion, nearly opposite meaning
      Mem(3, 0.3, kAlmostJoyful),
  };
  const std::vector<RetrievalHit> hits =
      Search(mems, q.query, Options(RetrievalStrategy::kCombinedMultiplicative));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].id, 2);
  EXPECT_NEAR(hits[0].score, 0.0, 1e-6);
  const double d3 = Chord(0.3) * EmotionDistance(kJoyful, kAlmostJoyful);  // ~0.0004
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{2, 3, 1}));
  EXPECT_NEAR(hits[1].score, d3, 1e-6);
}

TEST(RetrieverTest, SemanticFirstReranksItsPoolByEmotion) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {
      Mem(1, 0.1, kFearful), Mem(2, 0.2, kNeutralEmotion), Mem(3, 0.3, kJoyful),
      Mem(4, 0.4, kJoyful),  // 4th closest: outside a pool of 3 despite its perfect emotion
      Mem(5, 3.0, kJoyful),
  };
  const std::vector<RetrievalHit> hits =
      Search(mems, q.query, Options(RetrievalStrategy::kSemanticFirst, /*k=*/2, /*pool=*/3));
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{3, 2}));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].score, hits[0].d_emo);
  EXPECT_NEAR(hits[1].score, EmotionDistance(kJoyful, kNeutralEmotion), 1e-6);
  // A pool of 4 lets memory 4 in.
  EXPECT_EQ(Ids(Search(mems, q.query, Options(RetrievalStrategy::kSemanticFirst, 2, 4))),
            (std::vector<MemoryId>{3, 4}));
}

TEST(RetrieverTest, EmotionFirstReranksItsPoolByMeaning) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {
      Mem(1, 0.0, kFearful),         // the perfect semantic match, outside the emotion pool
      Mem(2, 1.0, kJoyful),          // d_emo 0
      Mem(3, 0.5, kAlmostJoyful),    // d_emo ~0.001
      Mem(4, 2.0, kJoyful),          // d_emo 0
      Mem(5, 0.2, kNeutralEmotion),  // d_emo 0.307: 4th, outside a pool of 3
  };
  const std::vector<RetrievalHit> hits =
      Search(mems, q.query, Options(RetrievalStrategy::kEmotionFirst, /*k=*/2, /*pool=*/3));
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{3, 2}));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_NEAR(hits[0].score, Chord(0.5), 1e-6);
  EXPECT_EQ(hits[0].score, hits[0].d_sem);
  EXPECT_EQ(Ids(Search(mems, q.query, Options(RetrievalStrategy::kEmotionFirst, 3, 4))),
            (std::vector<MemoryId>{5, 3, 2}));
}

TEST(RetrieverTest, TiesBreakByAscendingIdInEveryStrategy) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {Mem(7, 0.2, kJoyful), Mem(3, 0.2, kJoyful),
                                        Mem(9, 0.2, kJoyful), Mem(5, 0.2, kJoyful),
                                        Mem(1, 1.0, kFearful)};
  for (RetrievalStrategy s : kAllStrategies) {
    EXPECT_EQ(Ids(Search(mems, q.query, Options(s, /*k=*/3, /*pool=*/3))),
              (std::vector<MemoryId>{3, 5, 7}))
        << StrategyName(s);
  }
}

TEST(RetrieverTest, ReturnsEveryPassingMemoryWhenFewerThanK) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {Mem(1, 0.1, kJoyful), Mem(2, 0.2, kFearful),
                                        Mem(3, 0.3, kJoyful, /*story_time=*/99)};
  q.query.point_in_time = 50;
  for (RetrievalStrategy s : kAllStrategies) {
    EXPECT_EQ(Search(mems, q.query, Options(s)).size(), 2u) << StrategyName(s);
    EXPECT_TRUE(Search({}, q.query, Options(s)).empty()) << StrategyName(s);
  }
}

// ---- the time filter ----

TEST(RetrieverTest, PointInTimeHidesLaterMemoriesAndKeepsTimelessOnes) {
  QueryHolder q;
  const std::vector<MemoryUnit> mems = {Mem(1, 0.4, kJoyful, 5), Mem(2, 0.3, kJoyful, 10),
                                        Mem(3, 0.0, kJoyful, 11),  // best match
                                        Mem(4, 0.5, kFearful, std::nullopt)};
  const auto sorted_ids = [](std::vector<RetrievalHit> hits) {
    std::vector<MemoryId> ids = Ids(hits);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  for (RetrievalStrategy s : kAllStrategies) {
    q.query.point_in_time = 10;
    EXPECT_EQ(sorted_ids(Search(mems, q.query, Options(s, 10, 10))),
              (std::vector<MemoryId>{1, 2, 4}))
        << StrategyName(s);
    q.query.point_in_time = 0;  // only the timeless memory
    EXPECT_EQ(Ids(Search(mems, q.query, Options(s))), (std::vector<MemoryId>{4}))
        << StrategyName(s);
    q.query.point_in_time = std::nullopt;  // no cutoff
    EXPECT_EQ(Search(mems, q.query, Options(s)).size(), 4u) << StrategyName(s);
  }
}

// Property: over the labelled set, no strategy ever returns a memory from after the query's
// point in time, at any k.
TEST(RetrieverTest, NoStrategyLeaksMemoriesAfterThePointInTimeOnTheLabelledSet) {
  absl::StatusOr<testing::RetrievalSet> set =
      testing::LoadRetrievalSet(testing::RetrievalSetPath());
  ASSERT_TRUE(set.ok()) << set.status();
  int checked = 0;
  for (const testing::LabelledCharacter& c : set->characters) {
    MemoryIndex index(set->dim);
    std::unordered_map<MemoryId, const MemoryUnit*> by_id;
    for (const MemoryUnit& m : c.memories) {
      ASSERT_TRUE(index.Add(m).ok());
      by_id[m.id] = &m;
    }
    for (const testing::LabelledQuery& lq : c.queries) {
      for (RetrievalStrategy s : kAllStrategies) {
        for (int k : {10, 50, 400}) {
          absl::StatusOr<std::vector<RetrievalHit>> hits =
              index.Search(lq.AsQuery(), Options(s, k, std::max(k, 20)));
          ASSERT_TRUE(hits.ok());
          for (const RetrievalHit& h : *hits) {
            const MemoryUnit& m = *by_id.at(h.id);
            ASSERT_TRUE(!m.story_time || *m.story_time <= lq.point_in_time)
                << StrategyName(s) << " returned memory " << m.id << " (story time "
                << *m.story_time << ") at point in time " << lq.point_in_time;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

// ---- the weighted mode ----

TEST(RetrieverTest, WeightedScoreFollowsItsFormula) {
  QueryHolder q;
  q.query.now_ms = 10'000;
  MemoryUnit m = Mem(1, 0.6, kAlmostJoyful);
  m.importance = 7.0f;
  m.wall_time_ms = 8'000;  // two half-lives old
  MemoryUnit future = Mem(2, 1.2, kFearful);
  future.importance = 2.0f;
  future.wall_time_ms = 12'000;  // written "after" now: age clamps to 0, recency 1
  RetrievalOptions o = Options(RetrievalStrategy::kWeighted);
  o.weighted = {
      .w_sem = 0.5f, .w_emo = 2.0f, .w_rec = 3.0f, .w_imp = 0.4f, .recency_half_life_ms = 1'000};
  const std::vector<RetrievalHit> hits = Search({m, future}, q.query, o);
  ASSERT_EQ(hits.size(), 2u);
  const double want_m =
      0.5 * std::cos(0.6) + 2.0 * EmotionCosine(kJoyful, kAlmostJoyful) + 3.0 * 0.25 + 0.4 * 0.7;
  const double want_future =
      0.5 * std::cos(1.2) + 2.0 * EmotionCosine(kJoyful, kFearful) + 3.0 * 1.0 + 0.4 * 0.2;
  EXPECT_EQ(Ids(hits), (std::vector<MemoryId>{2, 1}));  // 3.95 > 3.44: descending
  EXPECT_NEAR(hits[0].score, want_future, 1e-5);
  EXPECT_NEAR(hits[1].score, want_m, 1e-5);
  EXPECT_NEAR(hits[1].d_sem, Chord(0.6), 1e-6);
}

TEST(RetrieverTest, WeightedTermsRankAloneAsExpected) {
  QueryHolder q;
  q.query.now_ms = 100'000;
  std::vector<MemoryUnit> mems;
  for (int i = 0; i < 4; ++i) {
    MemoryUnit m = Mem(i + 1, 0.3 * i, i % 2 ? kJoyful : kFearful);
    m.importance = static_cast<float>(1 + 3 * ((i + 2) % 4));  // ids 1..4 -> 7, 10, 1, 4
    m.wall_time_ms = 10'000 * ((i + 1) % 4);                   // ids 1..4 -> 10k, 20k, 30k, 0
    mems.push_back(m);
  }
  RetrievalOptions o = Options(RetrievalStrategy::kWeighted);
  o.weighted = {.w_sem = 0, .w_emo = 0, .w_rec = 1, .w_imp = 0, .recency_half_life_ms = 50'000};
  EXPECT_EQ(Ids(Search(mems, q.query, o)), (std::vector<MemoryId>{3, 2, 1, 4}));  // newest first
  o.weighted = {.w_sem = 0, .w_emo = 0, .w_rec = 0, .w_imp = 1};
  EXPECT_EQ(Ids(Search(mems, q.query, o)), (std::vector<MemoryId>{2, 1, 4, 3}));
  o.weighted = {.w_sem = 1, .w_emo = 0, .w_rec = 0, .w_imp = 0};  // = semantic-only
  EXPECT_EQ(Ids(Search(mems, q.query, o)),
            Ids(Search(mems, q.query, Options(RetrievalStrategy::kSemantic))));
  o.weighted = {.w_sem = 0, .w_emo = 1, .w_rec = 0, .w_imp = 0};  // joyful ones first
  EXPECT_EQ(Ids(Search(mems, q.query, o)), (std::vector<MemoryId>{2, 4, 1, 3}));
}

// ---- validation ----

TEST(RetrieverTest, RejectsBadOptionsAndQueries) {
  QueryHolder q;
  MemoryIndex index(2);
  ASSERT_TRUE(index.Add(Mem(1, 0.1, kJoyful)).ok());
  const auto code = [&](const RetrievalQuery& query, const RetrievalOptions& o) {
    return index.Search(query, o).status().code();
  };
  EXPECT_EQ(code(q.query, Options(RetrievalStrategy::kSemantic, 0)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(q.query, Options(RetrievalStrategy::kSemanticFirst, 10, 5)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(q.query, Options(RetrievalStrategy::kEmotionFirst, 10, 5)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(index.Search(q.query, Options(RetrievalStrategy::kSemantic, 10, 5)).ok());
  RetrievalOptions weighted = Options(RetrievalStrategy::kWeighted);
  weighted.weighted.w_emo = -1.0f;
  EXPECT_EQ(code(q.query, weighted), absl::StatusCode::kInvalidArgument);
  weighted.weighted.w_emo = 1.0f;
  weighted.weighted.recency_half_life_ms = 0;
  EXPECT_EQ(code(q.query, weighted), absl::StatusCode::kInvalidArgument);

  const std::vector<float> three_d = {1.0f, 0.0f, 0.0f};
  const std::vector<float> not_unit = {0.5f, 0.5f};
  const std::vector<float> nan = {std::nanf(""), 0.0f};
  for (const std::vector<float>* bad : {&three_d, &not_unit, &nan}) {
    RetrievalQuery query = q.query;
    query.embedding = *bad;
    EXPECT_EQ(code(query, Options(RetrievalStrategy::kSemantic)),
              absl::StatusCode::kInvalidArgument);
  }
  RetrievalQuery bad_emotion = q.query;
  bad_emotion.emotion[3] = 0.0f;
  EXPECT_EQ(code(bad_emotion, Options(RetrievalStrategy::kSemantic)),
            absl::StatusCode::kInvalidArgument);
}

TEST(RetrieverTest, StrategyNamesRoundTrip) {
  for (RetrievalStrategy s : kAllStrategies) {
    absl::StatusOr<RetrievalStrategy> parsed = ParseStrategy(StrategyName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ParseStrategy("C-A").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- index upkeep ----

TEST(MemoryIndexTest, AddValidatesAndRemoveMovesTheLastRow) {
  MemoryIndex index(2);
  EXPECT_TRUE(index.Add(Mem(1, 0.1, kJoyful)).ok());
  EXPECT_EQ(index.Add(Mem(1, 0.2, kJoyful)).code(), absl::StatusCode::kAlreadyExists);
  MemoryUnit bad = Mem(2, 0.1, kJoyful);
  bad.importance = 11.0f;
  EXPECT_EQ(index.Add(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Mem(2, 0.1, kJoyful);
  bad.emotion[0] = 0.5f;
  EXPECT_EQ(index.Add(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Mem(2, 0.1, kJoyful);
  bad.embedding = {1.0f, 0.0f, 0.0f};
  EXPECT_EQ(index.Add(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index.size(), 1);

  for (int id = 2; id <= 5; ++id) ASSERT_TRUE(index.Add(Mem(id, 0.1 * id, kJoyful)).ok());
  EXPECT_EQ(index.Remove(9).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(index.Remove(2).ok());
  EXPECT_FALSE(index.Contains(2));
  EXPECT_EQ(index.size(), 4);
  EXPECT_EQ(index.RowOf(5), std::optional<int64_t>(1));  // the last row filled the hole
  QueryHolder q;
  absl::StatusOr<std::vector<RetrievalHit>> hits =
      index.Search(q.query, Options(RetrievalStrategy::kSemantic));
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(Ids(*hits), (std::vector<MemoryId>{1, 3, 4, 5}));
  EXPECT_EQ((*hits)[3].row, 1);
  index.Clear();
  EXPECT_EQ(index.size(), 0);
  EXPECT_TRUE(index.Add(Mem(2, 0.1, kJoyful)).ok());
}

// ---- fast path against the reference ----

// Random 384-d memories (real-valued emotions, so exact ties are improbable), a quarter of them
// timeless, across every strategy and several k / pool sizes.
TEST(RetrieverTest, FastPathMatchesReferenceOnRandomMemories) {
  constexpr int kDim = 384;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> score(kEmotionMin, kEmotionMax);
  std::uniform_int_distribution<int> time(0, 100);
  const auto unit_vector = [&] {
    std::vector<float> v(kDim);
    double norm = 0.0;
    for (float& x : v) {
      x = normal(rng);
      norm += double{x} * x;
    }
    for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
    return v;
  };
  const auto emotion = [&] {
    EmotionVector v;
    for (float& x : v) x = score(rng);
    return v;
  };
  std::vector<MemoryUnit> mems;
  for (int i = 0; i < 1500; ++i) {
    MemoryUnit m;
    m.id = 1000 + (i * 7919) % 1500;  // ids not in row order
    m.embedding = unit_vector();
    m.emotion = emotion();
    m.importance = 1.0f + static_cast<float>(time(rng) % 10);
    m.wall_time_ms = int64_t{time(rng)} * 60'000;
    if (time(rng) >= 25) m.story_time = time(rng);
    mems.push_back(std::move(m));
  }
  MemoryIndex index(kDim);
  for (const MemoryUnit& m : mems) ASSERT_TRUE(index.Add(m).ok());
  for (int qi = 0; qi < 20; ++qi) {
    const std::vector<float> embedding = unit_vector();
    RetrievalQuery query{
        .embedding = embedding, .emotion = emotion(), .point_in_time = {}, .now_ms = 6'000'000};
    if (qi % 4 != 0) query.point_in_time = time(rng);
    for (RetrievalStrategy s : kAllStrategies) {
      for (auto [k, pool] : std::vector<std::pair<int, int>>{{1, 1}, {10, 20}, {25, 60}}) {
        RetrievalOptions o = Options(s, k, pool);
        o.weighted = {.w_sem = 1.0f,
                      .w_emo = 0.5f,
                      .w_rec = 0.3f,
                      .w_imp = 0.2f,
                      .recency_half_life_ms = 3'600'000};
        absl::StatusOr<std::vector<RetrievalHit>> fast = index.Search(query, o);
        absl::StatusOr<std::vector<RetrievalHit>> ref = RetrieveReference(mems, query, o);
        ASSERT_TRUE(fast.ok() && ref.ok());
        SCOPED_TRACE(::testing::Message() << StrategyName(s) << " k=" << k << " query " << qi);
        ExpectSameRanking(*fast, *ref);
      }
    }
  }
}

}  // namespace
}  // namespace troupe
