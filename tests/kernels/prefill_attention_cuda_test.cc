// cuda::PrefillAttention against ref::PagedAttention over the same (bf16-valued) cache: several
// sequences in one call, each a chunk of new tokens (1, 17, 64, 65, 300) after a cached prefix
// (0, 5, 16, 1000), cut into tiles as kernels/cuda/prefill_attention.h describes and
// launched in shuffled order; head dims 64 and 128, GQA groups 1, 4 and 8; shuffled pages with
// NaN in every unwritten slot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/prefill_attention.h"
#include "kernels/ggml_types.h"
#include "kernels/paged_attention.h"
#include "tests/testing/cuda_testing.h"
#include "tests/testing/paged_kv_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

constexpr int kBlockSize = 16;

struct Chunk {
  int prefix;  // positions already cached before the chunk
  int rows;    // new tokens
};
// Every prefix length and every chunk length at least once.
constexpr Chunk kChunks[] = {{0, 1},    {5, 17},   {16, 64}, {1000, 65}, {0, 300},
                             {16, 300}, {1000, 1}, {5, 64},  {0, 65},    {1000, 300}};

// rising: scores grow with position (testing::MakeScoresRiseWithPosition), so each row's result
// pins down exactly which keys the causal mask let through.
void RunPrefillCase(int head_dim, int group, uint32_t seed, bool rising = false) {
  SCOPED_TRACE("head_dim=" + std::to_string(head_dim) + " group=" + std::to_string(group) +
               " rising=" + std::to_string(rising));
  ASSERT_TRUE(cuda::PrefillAttentionSupports(head_dim, group));
  const int n_kv_heads = group == 8 ? 1 : 2;
  const int n_heads = n_kv_heads * group;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::mt19937 rng(seed);

  // The cache holds prefix + chunk positions of each sequence (the chunk's K/V were written
  // by RopeKvWrite before attention runs).
  std::vector<int> seq_lens;
  for (const Chunk& c : kChunks) seq_lens.push_back(c.prefix + c.rows);
  testing::PagedKvHost kv =
      testing::MakePagedKv(seq_lens, kBlockSize, n_kv_heads, head_dim, /*spare_blocks=*/23, rng);
  if (rising) testing::MakeScoresRiseWithPosition(kv);

  // Query rows: the chunks back to back; tiles of up to PrefillTileTokens(group) consecutive
  // rows (their query heads fill the block's 64 rows).
  const int tile_tokens = cuda::PrefillTileTokens(group);
  std::vector<int32_t> tiles, token_seq, token_pos;
  for (int s = 0; s < kv.n_seqs(); ++s) {
    const int first_row = static_cast<int>(token_seq.size());
    for (int r = 0; r < kChunks[s].rows; r += tile_tokens) {
      const int rows = std::min(tile_tokens, kChunks[s].rows - r);
      tiles.insert(tiles.end(), {s, first_row + r, rows, kChunks[s].prefix + r});
    }
    for (int r = 0; r < kChunks[s].rows; ++r) {
      token_seq.push_back(s);
      token_pos.push_back(kChunks[s].prefix + r);
    }
  }
  const int n_tiles = static_cast<int>(tiles.size() / 4);
  // Tiles are independent: launch them in a shuffled order.
  std::vector<int> order(n_tiles);
  for (int i = 0; i < n_tiles; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int32_t> shuffled;
  for (int i : order)
    shuffled.insert(shuffled.end(), tiles.begin() + 4 * i, tiles.begin() + 4 * i + 4);

  const int n_rows = static_cast<int>(token_seq.size());
  const size_t row_elems = static_cast<size_t>(n_heads) * head_dim;
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<Bf16> q(n_rows * row_elems);
  std::vector<float> q_f32(q.size());
  const std::vector<float> rising_q = testing::RisingQuery(head_dim);
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = Fp32ToBf16(rising ? rising_q[i % head_dim] : normal(rng));
    q_f32[i] = Bf16ToFp32(q[i]);
  }
  std::vector<float> want(q.size(), 0.0f);
  ref::PagedAttention({.q = q_f32.data(),
                       .k_cache = kv.k_f32.data(),
                       .v_cache = kv.v_f32.data(),
                       .cache_type = KvCacheType::kF32,
                       .out = want.data(),
                       .token_seq = token_seq.data(),
                       .token_pos = token_pos.data(),
                       .block_tables = kv.block_tables.data(),
                       .n_tokens = n_rows,
                       .max_blocks_per_seq = kv.max_blocks,
                       .n_heads = n_heads,
                       .n_kv_heads = n_kv_heads,
                       .head_dim = head_dim,
                       .block_size = kBlockSize,
                       .scale = scale});

  const testing::PagedKvDevice d_kv(kv);
  DeviceBuffer<Bf16> d_q(q), d_out(q.size());
  DeviceBuffer<int32_t> d_tiles(shuffled);
  testing::PoisonNaN(d_out);
  cuda::PrefillAttention({.kv = d_kv.view(),
                          .q = d_q.get(),
                          .out = d_out.get(),
                          .tiles = d_tiles.get(),
                          .n_tiles = n_tiles,
                          .n_heads = n_heads,
                          .scale = scale},
                         nullptr);
  const std::vector<float> got = testing::ToFloat(d_out.Download());

  int first_row = 0;
  for (int s = 0; s < kv.n_seqs(); ++s) {
    SCOPED_TRACE("prefix " + std::to_string(kChunks[s].prefix) + " rows " +
                 std::to_string(kChunks[s].rows));
    const auto begin = static_cast<std::ptrdiff_t>(first_row * row_elems);
    const auto end = static_cast<std::ptrdiff_t>((first_row + kChunks[s].rows) * row_elems);
    const std::vector<float> got_seq(got.begin() + begin, got.begin() + end);
    const std::vector<float> want_seq(want.begin() + begin, want.begin() + end);
    EXPECT_LE(testing::RelativeL2(got_seq, want_seq), 5e-3);
    // P goes through bf16 for the tensor-core P.V: each weight is off by up to 2^-9 of itself.
    EXPECT_TRUE(testing::AllClose(got_seq, want_seq, 1e-2, 2e-2));
    first_row += kChunks[s].rows;
  }
}

TEST(PrefillAttentionCudaTest, MatchesReferenceForChunksAfterCachedPrefixes) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 300;
  for (int head_dim : {64, 128}) {
    for (int group : {1, 4, 8}) RunPrefillCase(head_dim, group, seed++);
  }
}

TEST(PrefillAttentionCudaTest, CausalMaskStopsExactlyAtTheRowsPosition) {
  TROUPE_SKIP_WITHOUT_CUDA();
  // The last keys dominate each row: attending the next position, or missing the row's own,
  // shows far beyond the tolerance.
  RunPrefillCase(128, 4, 400, /*rising=*/true);
  RunPrefillCase(64, 1, 401, /*rising=*/true);
}

}  // namespace
}  // namespace troupe
