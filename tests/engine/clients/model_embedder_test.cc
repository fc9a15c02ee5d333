#include "engine/clients/model_embedder.h"

#include <cmath>

#include "gtest/gtest.h"
#include "tests/testing/smol_engine.h"

namespace troupe {
namespace {


double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += static_cast<double>(a[i]) * b[i];
  return dot;  // unit vectors
}

class ModelEmbedderTest : public testing::SmolEngineTest {};

TEST_F(ModelEmbedderTest, UnitVectorsOfTheModelWidthRepeatable) {
  ModelEmbedder embedder(engine_);
  EXPECT_EQ(embedder.dim(), 576);
  auto a = embedder.Embed("The lighthouse keeper climbed the stairs at dusk.");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(static_cast<int>(a->size()), embedder.dim());
  EXPECT_NEAR(Cosine(*a, *a), 1.0, 1e-4);
  // The second time the prompt comes from the prefix cache up to its last token: same result.
  auto again = embedder.Embed("The lighthouse keeper climbed the stairs at dusk.");
  ASSERT_TRUE(again.ok());
  EXPECT_NEAR(Cosine(*a, *again), 1.0, 1e-5);
  auto other = embedder.Embed("Quarterly revenue grew by four percent.");
  ASSERT_TRUE(other.ok());
  EXPECT_LT(Cosine(*a, *other), 0.999);
  // Empty text still gives a vector (the prompt is BOS alone).
  auto empty = embedder.Embed("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(static_cast<int>(empty->size()), embedder.dim());
}

// An embed-only request generates nothing and frees its KV like any other.
TEST_F(ModelEmbedderTest, EngineRunsEmbedOnlyRequestsWithoutTokens) {
  ModelEmbedder embedder(engine_);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(embedder.Embed("A short line number " + std::to_string(i)).ok());
  for (int i = 0; i < 1000 && engine_->Stats().num_running > 0; ++i) absl::SleepFor(absl::Milliseconds(1));
  const EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.num_running, 0);
  EXPECT_EQ(stats.num_waiting, 0);
  EXPECT_EQ(stats.generation_tokens_total, 0);
}

}  // namespace
}  // namespace troupe
