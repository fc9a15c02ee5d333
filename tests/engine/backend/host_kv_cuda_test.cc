// The CUDA backend's host KV tier (gpu label; skips without a device; also built on cuda_cpu,
// whose stream-order checks abort if a copy and a forward pass touch the same blocks without
// an event between the copy stream and the compute stream):
//  - blocks copied to pinned host slots and back read exactly as the originals, the copies of
//    one call in order;
//  - a session restored from the host tier after other sessions evicted it gets the CPU
//    engine's check: the same greedy tokens as an engine with room, counted as cached.
#include <gtest/gtest.h>

#include "tests/testing/cuda_testing.h"
#include "tests/testing/host_kv_checks.h"

namespace troupe {
namespace {

TEST(HostKvCudaTest, RestoredBlocksReadAsTheOriginals) {
  TROUPE_SKIP_WITHOUT_CUDA();
  testing::ExpectRestoredBlocksReadAsTheOriginals("cuda");
}

TEST(HostKvCudaTest, RestoredTurnGivesTheSameTokensAndCountsAsCached) {
  TROUPE_SKIP_WITHOUT_CUDA();
  testing::ExpectRestoredTurnMatches("cuda");
}

}  // namespace
}  // namespace troupe
