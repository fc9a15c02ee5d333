// Prefill attention: FlashAttention-2 on mma.sync (bf16 x bf16 -> f32), tiles in registers.
//
// Block = (tile, kv head), 4 warps, two blocks per SM; warp w owns query rows [16w, 16w + 16)
// of the tile, whose 64 rows are the tile's tokens times the GQA group's query heads (pack-GQA,
// as FA3). Each warp keeps its Q fragments, its scores S, its probabilities P and its output
// accumulator O in registers (layouts in tensor_core.cuh): S's accumulator registers are, two
// n-blocks at a time, exactly P's A operand for P V, and the online-softmax rescale of O is a
// multiply per register. Shared memory holds Q and two stages of K and V (5 tiles of 64 rows,
// 80 KB at head dim 128): the copies of key tile t + 1 (16-byte cp.async, rows gathered from the
// pages) are in flight while tile t computes. Rows are stored with their 16-byte chunks swizzled
// (chunk c of row r at c ^ (r % 8)), so the 8 rows an ldmatrix reads, and the 8 chunks a cp.async
// round writes, fall in different banks without padding.
#include <cuda_pipeline.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/tensor_core.cuh"
#include "kernels/paged_index.h"

namespace troupe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = kPrefillTileRows;  // query rows per tile
constexpr int kKeys = 64;                // keys per K/V tile
constexpr int kWarpRows = 16;
constexpr int kStages = 2;
constexpr float kLog2e = 1.4426950408889634f;

template <int kHeadDim>
struct Tiles {
  static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  static constexpr int kTileElems = kRows * kHeadDim;
  static_assert(kKeys == kRows, "Q, K and V tiles share one layout");
  static constexpr size_t kBytes = sizeof(__nv_bfloat16) * kTileElems * (1 + 2 * kStages);
};

// Element offset of chunk `chunk` of row `row` in a swizzled tile.
template <int kHeadDim>
__device__ __forceinline__ int Swizzled(int row, int chunk) {
  return (row * Tiles<kHeadDim>::kChunks + (chunk ^ (row % 8))) * 8;
}

// Queues the copies of key tile `key0` (K and V rows gathered from the pages; rows at or past
// kv_len are zero-filled, their source never read) into stage buffers k_s / v_s.
template <int kHeadDim>
__device__ __forceinline__ void LoadKeyTile(const PrefillAttentionArgs& a, const int32_t* table,
                                            int kvh, int key0, int kv_len, __nv_bfloat16* k_s,
                                            __nv_bfloat16* v_s) {
  constexpr int kChunks = Tiles<kHeadDim>::kChunks;
  const int64_t kv_dim = int64_t{a.kv.n_kv_heads} * kHeadDim;
  const __nv_bfloat16* k_cache = AsDevice(a.kv.k_cache);
  const __nv_bfloat16* v_cache = AsDevice(a.kv.v_cache);
  // Consecutive threads take consecutive chunks of a row: a row's chunks are contiguous in the
  // cache, so a warp reads whole rows (2 or 4 of them) per round.
  static_assert(kKeys * kChunks % kThreads == 0);
#pragma unroll
  for (int j = 0; j < kKeys * kChunks / kThreads; ++j) {
    const int i = threadIdx.x + j * kThreads;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = key0 + r < kv_len;
    const int64_t offset =
        valid ? PagedSlot(table, key0 + r, a.kv.block_size) * kv_dim + kvh * kHeadDim + c * 8 : 0;
    const int zfill = valid ? 0 : 16;
    __pipeline_memcpy_async(k_s + Swizzled<kHeadDim>(r, c), k_cache + offset, 16, zfill);
    __pipeline_memcpy_async(v_s + Swizzled<kHeadDim>(r, c), v_cache + offset, 16, zfill);
  }
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads, 2) PrefillKernel(PrefillAttentionArgs a) {
  using T = Tiles<kHeadDim>;
  constexpr int kChunks = T::kChunks;
  constexpr int kDimSteps = kHeadDim / 16;  // k-steps of S = Q K^T
  constexpr int kDimBlocks = kHeadDim / 8;  // n-blocks of O
  constexpr int kKeyBlocks = kKeys / 8;     // n-blocks of S
  extern __shared__ __align__(128) unsigned char smem[];
  auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem);
  auto k_stage = [&](int s) { return q_s + T::kTileElems * (1 + s); };
  auto v_stage = [&](int s) { return q_s + T::kTileElems * (1 + kStages + s); };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;

  // The tile's n_rows tokens times the group's query heads are packed into the block's query
  // rows (pack-GQA): row r is token r / group, head kvh * group + r % group. Each K/V tile is
  // then loaded once for the whole group.
  // Tiles in reverse: a sequence's later tiles attend to more keys, so the longest blocks start
  // first and the short ones fill the last wave (causal load balance).
  const int32_t* tile = a.tiles + 4 * (gridDim.x - 1 - blockIdx.x);
  const int seq = tile[0], first_row = tile[1], n_rows = tile[2], first_pos = tile[3];
  const int kvh = blockIdx.y;
  const int group = a.n_heads / a.kv.n_kv_heads;
  const int q_rows = n_rows * group;  // <= kRows (PrefillTileTokens)
  const int kv_len = first_pos + n_rows;
  const int32_t* table = a.kv.kv_indices + a.kv.kv_indptr[seq];
  const __nv_bfloat16* q = AsDevice(a.q);

  // Stage 0: Q and key tile 0.
#pragma unroll
  for (int j = 0; j < kRows * kChunks / kThreads; ++j) {
    const int i = threadIdx.x + j * kThreads;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = r < q_rows;
    const int64_t offset =
        valid ? (int64_t{first_row + r / group} * a.n_heads + kvh * group + r % group) * kHeadDim +
                    c * 8
              : 0;
    __pipeline_memcpy_async(q_s + Swizzled<kHeadDim>(r, c), q + offset, 16, valid ? 0 : 16);
  }
  LoadKeyTile<kHeadDim>(a, table, kvh, 0, kv_len, k_stage(0), v_stage(0));
  __pipeline_commit();

  // This lane's rows of the warp: row_a = 16 w + g and row_b = row_a + 8, at the positions of
  // their tokens. Keys past a row's position are masked (causal).
  const int row_a = warp * kWarpRows + g, row_b = row_a + 8;
  const int pos_a = first_pos + row_a / group, pos_b = first_pos + row_b / group;
  const int warp_last_pos = first_pos + (warp * kWarpRows + kWarpRows - 1) / group;
  const float scale_log2 = a.scale * kLog2e;

  uint32_t q_frag[kDimSteps][4];
  float o[kDimBlocks][4];
#pragma unroll
  for (int n = 0; n < kDimBlocks; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY;  // running maxima (log2 units)
  float l_a = 0.0f, l_b = 0.0f;            // this lane's share of the running sums

  const int num_key_tiles = CeilDiv(kv_len, kKeys);
  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int key0 = kt * kKeys;
    if (kt + 1 < num_key_tiles) {
      LoadKeyTile<kHeadDim>(a, table, kvh, key0 + kKeys, kv_len, k_stage((kt + 1) % kStages),
                            v_stage((kt + 1) % kStages));
    }
    __pipeline_commit();  // possibly empty: the wait below then always leaves one group
    __pipeline_wait_prior(1);
    __syncthreads();  // every thread's copies of tile kt (and, at kt 0, of Q) have landed

    if (kt == 0) {
      // Q fragments, once: matrices (rows 0-7 | 8-15) x (columns 0-7 | 8-15) of each k-step.
#pragma unroll
      for (int ks = 0; ks < kDimSteps; ++ks) {
        const int m = lane / 8;
        const int r = warp * kWarpRows + (m % 2) * 8 + lane % 8;
        LdMatrixX4(q_frag[ks], q_s + Swizzled<kHeadDim>(r, 2 * ks + m / 2));
      }
    }

    // A warp whose rows all precede the tile skips it (only the causal diagonal's tiles).
    if (key0 <= warp_last_pos) {
      const __nv_bfloat16* k_s = k_stage(kt % kStages);
      const __nv_bfloat16* v_s = v_stage(kt % kStages);

      // S = Q K^T, [16, 64] per warp. One ldmatrix.x4 of K gives the B operands of two n-blocks
      // (keys 0-7 | 8-15 of the pair) for one k-step (columns 0-7 | 8-15).
      float s[kKeyBlocks][4];
#pragma unroll
      for (int n = 0; n < kKeyBlocks; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < kDimSteps; ++ks) {
#pragma unroll
        for (int np = 0; np < kKeyBlocks / 2; ++np) {
          const int m = lane / 8;
          const int key = np * 16 + (m / 2) * 8 + lane % 8;
          uint32_t k_frag[4];
          LdMatrixX4(k_frag, k_s + Swizzled<kHeadDim>(key, 2 * ks + m % 2));
          const uint32_t b0[2] = {k_frag[0], k_frag[1]};
          const uint32_t b1[2] = {k_frag[2], k_frag[3]};
          MmaBf16(s[2 * np], q_frag[ks], b0);
          MmaBf16(s[2 * np + 1], q_frag[ks], b1);
        }
      }

      // Online softmax in log2 units. Register i of n-block n is row (i < 2 ? a : b), key
      // key0 + 8n + 2t + i % 2; the four lanes of a group share a row.
      const bool on_diagonal = key0 + kKeys - 1 > first_pos;
      float tile_max_a = -INFINITY, tile_max_b = -INFINITY;
#pragma unroll
      for (int n = 0; n < kKeyBlocks; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int key = key0 + 8 * n + 2 * t + i % 2;
          const bool keep = !on_diagonal || key <= (i < 2 ? pos_a : pos_b);
          s[n][i] = keep ? s[n][i] * scale_log2 : -INFINITY;
        }
        tile_max_a = fmaxf(tile_max_a, fmaxf(s[n][0], s[n][1]));
        tile_max_b = fmaxf(tile_max_b, fmaxf(s[n][2], s[n][3]));
      }
#pragma unroll
      for (int x = 1; x < 4; x <<= 1) {
        tile_max_a = fmaxf(tile_max_a, __shfl_xor_sync(kFullMask, tile_max_a, x));
        tile_max_b = fmaxf(tile_max_b, __shfl_xor_sync(kFullMask, tile_max_b, x));
      }
      const float new_m_a = fmaxf(m_a, tile_max_a), new_m_b = fmaxf(m_b, tile_max_b);
      // Nothing kept yet: no old sum to rescale, and exp2(-inf - 0) = 0 for the masked keys.
      const float alpha_a = m_a == -INFINITY ? 0.0f : exp2f(m_a - new_m_a);
      const float alpha_b = m_b == -INFINITY ? 0.0f : exp2f(m_b - new_m_b);
      m_a = new_m_a;
      m_b = new_m_b;
      const float base_a = m_a == -INFINITY ? 0.0f : m_a;
      const float base_b = m_b == -INFINITY ? 0.0f : m_b;
      float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
      for (int n = 0; n < kKeyBlocks; ++n) {
        s[n][0] = exp2f(s[n][0] - base_a);
        s[n][1] = exp2f(s[n][1] - base_a);
        s[n][2] = exp2f(s[n][2] - base_b);
        s[n][3] = exp2f(s[n][3] - base_b);
        sum_a += s[n][0] + s[n][1];
        sum_b += s[n][2] + s[n][3];
      }
      l_a = l_a * alpha_a + sum_a;
      l_b = l_b * alpha_b + sum_b;
#pragma unroll
      for (int n = 0; n < kDimBlocks; ++n) {
        o[n][0] *= alpha_a;
        o[n][1] *= alpha_a;
        o[n][2] *= alpha_b;
        o[n][3] *= alpha_b;
      }

      // O += P V. P's A operand for keys [16j, 16j + 16) is S's n-blocks 2j and 2j + 1; one
      // ldmatrix.x4.trans of V gives the B operands of two n-blocks of O (columns 0-7 | 8-15
      // of the pair) for keys 0-7 | 8-15.
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j) {
        const uint32_t p_frag[4] = {PackBf16x2(s[2 * j][0], s[2 * j][1]),
                                    PackBf16x2(s[2 * j][2], s[2 * j][3]),
                                    PackBf16x2(s[2 * j + 1][0], s[2 * j + 1][1]),
                                    PackBf16x2(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
        for (int dp = 0; dp < kDimBlocks / 2; ++dp) {
          const int m = lane / 8;
          const int key = 16 * j + (m % 2) * 8 + lane % 8;
          uint32_t v_frag[4];
          LdMatrixX4Trans(v_frag, v_s + Swizzled<kHeadDim>(key, 2 * dp + m / 2));
          const uint32_t b0[2] = {v_frag[0], v_frag[1]};
          const uint32_t b1[2] = {v_frag[2], v_frag[3]};
          MmaBf16(o[2 * dp], p_frag, b0);
          MmaBf16(o[2 * dp + 1], p_frag, b1);
        }
      }
    }
    __syncthreads();  // every warp is done with stage kt % kStages before it is refilled
  }

  __pipeline_wait_prior(0);  // nothing is left in flight (the last groups are empty)

  // Normalise, stage the warp's rows in its own rows of Q's buffer (no other warp reads them
  // after the Q fragments were loaded), then write whole 16-byte chunks to the output.
#pragma unroll
  for (int x = 1; x < 4; x <<= 1) {
    l_a += __shfl_xor_sync(kFullMask, l_a, x);
    l_b += __shfl_xor_sync(kFullMask, l_b, x);
  }
  const float inv_a = l_a > 0.0f ? 1.0f / l_a : 0.0f;
  const float inv_b = l_b > 0.0f ? 1.0f / l_b : 0.0f;
#pragma unroll
  for (int n = 0; n < kDimBlocks; ++n) {
    const __nv_bfloat162 top = __floats2bfloat162_rn(o[n][0] * inv_a, o[n][1] * inv_a);
    const __nv_bfloat162 bottom = __floats2bfloat162_rn(o[n][2] * inv_b, o[n][3] * inv_b);
    // Chunk n of the row holds columns 8n..8n+7; this lane's pair starts at column 2t.
    *reinterpret_cast<__nv_bfloat162*>(q_s + Swizzled<kHeadDim>(row_a, n) + 2 * t) = top;
    *reinterpret_cast<__nv_bfloat162*>(q_s + Swizzled<kHeadDim>(row_b, n) + 2 * t) = bottom;
  }
  __syncwarp();
  __nv_bfloat16* out = AsDevice(a.out);
  for (int i = lane; i < kWarpRows * kChunks; i += 32) {
    const int r = warp * kWarpRows + i / kChunks, c = i % kChunks;
    if (r >= q_rows) continue;
    const int64_t offset =
        (int64_t{first_row + r / group} * a.n_heads + kvh * group + r % group) * kHeadDim + c * 8;
    *reinterpret_cast<uint4*>(out + offset) =
        *reinterpret_cast<const uint4*>(q_s + Swizzled<kHeadDim>(r, c));
  }
}

template <int kHeadDim>
void Launch(const PrefillAttentionArgs& a, Stream stream) {
  constexpr size_t kBytes = Tiles<kHeadDim>::kBytes;
  static const cudaError_t configured = cudaFuncSetAttribute(
      PrefillKernel<kHeadDim>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kBytes));
  TROUPE_CUDA_CHECK(configured);
  PrefillKernel<kHeadDim><<<dim3(a.n_tiles, a.kv.n_kv_heads), kThreads, kBytes, stream>>>(a);
}

}  // namespace

bool PrefillAttentionSupports(int head_dim, int group) {
  return (head_dim == 64 || head_dim == 128) && group >= 1 && group <= kPrefillTileRows;
}

void PrefillAttention(const PrefillAttentionArgs& a, Stream stream) {
  if (a.n_tiles == 0) return;
  TROUPE_CHECK(a.kv.n_kv_heads > 0 && a.n_heads % a.kv.n_kv_heads == 0);
  TROUPE_CHECK(PrefillAttentionSupports(a.kv.head_dim, a.n_heads / a.kv.n_kv_heads));
  // Tiles hold at most PrefillTileTokens(group) tokens (checked on the device would cost a
  // branch per block; the planner and the tests build them that way).
  if (a.kv.head_dim == 64) {
    Launch<64>(a, stream);
  } else {
    Launch<128>(a, stream);
  }
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
