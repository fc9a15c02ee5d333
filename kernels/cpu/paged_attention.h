// The CPU backend's paged attention: ref::PagedAttention's contract, parallel over a thread pool
// and, with AVX-512, computed 16 query rows at a time (one per lane) so that each K/V row is
// read and converted once for all the rows that use it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/paged_attention.h"

namespace troupe::cpu {

// Up to kTileRows query rows that share a sequence and a kv head. Rows are numbered token-major
// over the tokens [token_begin, token_begin + n) of one sequence (consecutive in the batch):
// row r is token token_begin + r / group, query head kv_head * group + r % group.
struct AttentionTile {
  static constexpr int kTileRows = 16;
  int64_t token_begin = 0;
  int32_t row_begin = 0;
  int32_t row_end = 0;  // row_end - row_begin <= kTileRows
  int32_t kv_head = 0;
};

// The tiles covering every non-padding token of `args` and every kv head.
std::vector<AttentionTile> PlanAttentionTiles(const PagedAttentionArgs& args);

// True when this build has the tiled kernel (AVX-512); otherwise PagedAttention runs
// ref::PagedAttention split over (token, kv head).
bool HasTiledAttention();

// Same contract as ref::PagedAttention (kv_head_begin/end must be the defaults). Per row, the
// arithmetic is the reference's: keys in order with a running max, for an f16 cache the query
// and the running sum rounded to f16 as in llama.cpp. Sums within a score and exp() are
// computed in a different order, so results agree with the reference to float rounding (f32
// cache) or to a few f16 ulps (f16 cache), not bit for bit. A row's result does not depend on
// which other rows share its tile, so batching never changes it.
void PagedAttention(const PagedAttentionArgs& args, ThreadPool& pool);

namespace internal {
// One tile on the calling thread. A tile of exactly one token's query heads (a decode) runs
// with vectors along head_dim instead of one row per lane; the results are bit-identical.
// REQUIRES: HasTiledAttention().
void AttendTile(const PagedAttentionArgs& args, const AttentionTile& tile);
// Always one row per lane, whatever the tile; for tests of that equivalence.
void AttendTileLanes(const PagedAttentionArgs& args, const AttentionTile& tile);
}  // namespace internal

}  // namespace troupe::cpu
