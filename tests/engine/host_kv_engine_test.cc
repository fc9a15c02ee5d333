// The host KV tier end to end on the CPU backend: a session's turn restored from host memory
// after other sessions pushed its blocks out of the KV cache gets the same greedy tokens, counts
// its prompt as cached and shows in the engine's stats (tests/testing/host_kv_checks.h; the
// CUDA backend's run is tests/engine/backend/host_kv_cuda_test.cc).
#include <gtest/gtest.h>

#include "tests/testing/host_kv_checks.h"

namespace troupe {
namespace {

TEST(HostKvEngineTest, RestoredTurnGivesTheSameTokensAndCountsAsCached) {
  testing::ExpectRestoredTurnMatches("cpu");
}

TEST(HostKvEngineTest, RejectsATierWithoutPrefixCaching) {
  EngineOptions options;
  options.model_path = testing::StoriesPath();
  options.num_threads = 1;
  options.enable_prefix_caching = false;
  options.host_kv_cache_bytes = 1 << 20;
  const auto engine = Engine::Create(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace troupe
