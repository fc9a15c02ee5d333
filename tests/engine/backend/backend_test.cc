// What backend.h defines outside any one backend (backend.cc): the KV cache's bytes per block.
#include "engine/backend/backend.h"

#include <gtest/gtest.h>

namespace troupe {
namespace {

ModelConfig Shape(int num_layers, int num_kv_heads, int head_dim) {
  ModelConfig c;
  c.num_layers = num_layers;
  c.num_heads = num_kv_heads * 2;
  c.num_kv_heads = num_kv_heads;
  c.head_dim = head_dim;
  return c;
}

TEST(KvBlockBytesTest, CountsKeyAndValueOfEveryLayer) {
  // 2 (K and V) * 3 layers * 16 tokens * (2 heads * 8 dims) * 2 bytes.
  EXPECT_EQ(KvBlockBytes(Shape(3, 2, 8), {.block_size = 16, .type = KvCacheType::kF16}),
            2 * 3 * 16 * 16 * 2);
}

TEST(KvBlockBytesTest, F32DoublesTheBytesAndNumBlocksIsIgnored) {
  const ModelConfig c = Shape(3, 2, 8);
  const int64_t f16 = KvBlockBytes(c, {.num_blocks = 1, .block_size = 16});
  EXPECT_EQ(KvBlockBytes(c, {.num_blocks = 999, .block_size = 16, .type = KvCacheType::kF32}),
            2 * f16);
  EXPECT_EQ(KvBlockBytes(c, {.num_blocks = 5, .block_size = 32}), 2 * f16);
}

TEST(KvBlockBytesTest, QueryHeadsDoNotCount) {
  ModelConfig c = Shape(1, 4, 64);
  const int64_t before = KvBlockBytes(c, {});
  c.num_heads = 32;
  EXPECT_EQ(KvBlockBytes(c, {}), before);
  EXPECT_EQ(before, 2 * 1 * 16 * 256 * 2);
}

// The SmolLM2-135M shape (30 layers, 3 KV heads of 64, f16): 360 KiB a 16-token block.
TEST(KvBlockBytesTest, SmolLm2Shape) {
  EXPECT_EQ(KvBlockBytes(Shape(30, 3, 64), {.block_size = 16, .type = KvCacheType::kF16}),
            360 * 1024);
}

}  // namespace
}  // namespace troupe
