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
  EXPECT_NE(engine.status().message().find("needs prefix caching on"), absl::string_view::npos)
      << engine.status();
}

// A budget that holds no block is an operator's mistake, refused with the block's size (as the
// KV cache's own budget is), not a tier silently left off.
TEST(HostKvEngineTest, RejectsABudgetUnderOneBlock) {
  EngineOptions options;
  options.model_path = testing::StoriesPath();
  options.num_threads = 1;
  options.host_kv_cache_bytes = 100;
  const auto engine = Engine::Create(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("host KV tier budget of 100 bytes holds no block"),
            absl::string_view::npos)
      << engine.status();
}

}  // namespace
}  // namespace troupe
