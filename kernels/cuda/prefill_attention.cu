// Prefill attention: FA2-style tiles on tensor cores through WMMA (bf16 x bf16 -> f32).
//
// Block = (tile, kv head), 4 warps; warp w owns query rows [16w, 16w + 16) of the tile, whose
// 64 rows are the tile's tokens times the GQA group's query heads (pack-GQA, as FA3).
// Shared memory: Q, K and V tiles (bf16), per warp a score / P.V scratch (f32), P (bf16) and
// the output accumulator O (f32). WMMA fragments have no documented element layout, so the
// per-row rescale of O by the online-softmax factor goes through shared memory.
#include <mma.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/paged_index.h"
#include "kernels/softmax_merge.h"

namespace troupe::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = kPrefillTileRows;  // query rows per tile
constexpr int kKeys = 64;                // keys per K/V tile
constexpr int kWarpRows = 16;

// Shared-memory layout. Rows are padded (8 bf16 or 4 floats past their width) so that the
// rows a warp touches at once fall in different banks; every WMMA pointer stays 32-byte aligned
// and every leading dimension a multiple of 16 bytes.
template <int kHeadDim>
struct Smem {
  static constexpr int kTileLd = kHeadDim + 8;   // Q, K, V rows (bf16)
  static constexpr int kSLd = kKeys + 4;         // scores (f32)
  static constexpr int kPvLd = kHeadDim + 4;     // P.V result (f32), in the same scratch
  static constexpr int kScratchLd = kSLd > kPvLd ? kSLd : kPvLd;
  static constexpr int kPLd = kKeys + 8;         // P (bf16)
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(__nv_bfloat16) * kRows * kTileLd;
  static constexpr size_t kV = kK + sizeof(__nv_bfloat16) * kKeys * kTileLd;
  static constexpr size_t kScratch = kV + sizeof(__nv_bfloat16) * kKeys * kTileLd;
  static constexpr size_t kP = kScratch + sizeof(float) * kWarps * kWarpRows * kScratchLd;
  static constexpr size_t kO = kP + sizeof(__nv_bfloat16) * kWarps * kWarpRows * kPLd;
  static constexpr size_t kRowStats = kO + sizeof(float) * kWarps * kWarpRows * kHeadDim;
  static constexpr size_t kBytes = kRowStats + sizeof(float) * kWarps * kWarpRows * 2;
  static_assert(kK % 32 == 0 && kV % 32 == 0 && kScratch % 32 == 0 && kP % 32 == 0 &&
                kO % 32 == 0 && kRowStats % 32 == 0, "WMMA needs 32-byte aligned tiles");
  static_assert((kWarpRows * kScratchLd * sizeof(float)) % 32 == 0 &&
                (kWarpRows * kPLd * sizeof(__nv_bfloat16)) % 32 == 0, "per-warp alignment");
};

// Copies `kTileRows` rows of head_dim bf16 into dst [kTileRows][Smem::kTileLd]; rows past
// `valid` become zeros. src_row(r) gives the source of row r.
template <int kHeadDim, int kTileRows, typename SrcRow>
__device__ __forceinline__ void LoadTile(__nv_bfloat16* dst, int valid, SrcRow src_row) {
  constexpr int kChunks = kHeadDim / 8;
  constexpr int kLd = Smem<kHeadDim>::kTileLd;
  for (int i = threadIdx.x; i < kTileRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < valid) v = reinterpret_cast<const uint4*>(src_row(r))[c];
    reinterpret_cast<uint4*>(dst + r * kLd)[c] = v;
  }
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads) PrefillKernel(PrefillAttentionArgs a) {
  using L = Smem<kHeadDim>;
  extern __shared__ __align__(128) unsigned char smem[];
  auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ);
  auto* k_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kK);
  auto* v_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scratch = reinterpret_cast<float*>(smem + L::kScratch) + warp * kWarpRows * L::kScratchLd;
  auto* p_w = reinterpret_cast<__nv_bfloat16*>(smem + L::kP) + warp * kWarpRows * L::kPLd;
  float* o_w = reinterpret_cast<float*>(smem + L::kO) + warp * kWarpRows * kHeadDim;
  float* alpha_w = reinterpret_cast<float*>(smem + L::kRowStats) + warp * kWarpRows;
  float* l_w = reinterpret_cast<float*>(smem + L::kRowStats) + kWarps * kWarpRows + warp * kWarpRows;

  // The tile's n_rows tokens times the group's query heads are packed into the block's query
  // rows (pack-GQA): row r is token r / group, head kvh * group + r % group. Each K/V tile is
  // then loaded once for the whole group.
  const int32_t* tile = a.tiles + 4 * blockIdx.x;
  const int seq = tile[0], first_row = tile[1], n_rows = tile[2], first_pos = tile[3];
  const int kvh = blockIdx.y;
  const int group = a.n_heads / a.kv.n_kv_heads;
  const int q_rows = n_rows * group;  // <= kRows (PrefillTileTokens)
  const int kv_len = first_pos + n_rows;
  const int64_t kv_dim = int64_t{a.kv.n_kv_heads} * kHeadDim;
  const int32_t* table = a.kv.kv_indices + a.kv.kv_indptr[seq];
  const __nv_bfloat16* q = AsDevice(a.q);

  LoadTile<kHeadDim, kRows>(q_s, q_rows, [&](int r) {
    return q + (int64_t{first_row + r / group} * a.n_heads + kvh * group + r % group) * kHeadDim;
  });
  for (int i = lane; i < kWarpRows * kHeadDim; i += 32) o_w[i] = 0.0f;

  // Softmax bookkeeping: lanes 2r and 2r+1 share row r of the warp, 32 columns each.
  const int my_row = lane / 2, half = lane % 2;
  const int row_in_tile = warp * kWarpRows + my_row;
  const bool row_valid = row_in_tile < q_rows;
  const int row_pos = first_pos + row_in_tile / group;
  SoftmaxState state;

  const int num_key_tiles = CeilDiv(kv_len, kKeys);
  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int key0 = kt * kKeys;
    __syncthreads();  // every warp is done with the previous K/V tile
    const int valid_keys = min(kKeys, kv_len - key0);
    LoadTile<kHeadDim, kKeys>(k_s, valid_keys, [&](int r) {
      return AsDevice(a.kv.k_cache) + PagedSlot(table, key0 + r, a.kv.block_size) * kv_dim +
             kvh * kHeadDim;
    });
    LoadTile<kHeadDim, kKeys>(v_s, valid_keys, [&](int r) {
      return AsDevice(a.kv.v_cache) + PagedSlot(table, key0 + r, a.kv.block_size) * kv_dim +
             kvh * kHeadDim;
    });
    __syncthreads();

    // S = Q_w K^T: [16, 64].
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag[kKeys / 16];
#pragma unroll
      for (int n = 0; n < kKeys / 16; ++n) wmma::fill_fragment(s_frag[n], 0.0f);
#pragma unroll
      for (int k = 0; k < kHeadDim / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> q_frag;
        wmma::load_matrix_sync(q_frag, q_s + warp * kWarpRows * L::kTileLd + k * 16, L::kTileLd);
#pragma unroll
        for (int n = 0; n < kKeys / 16; ++n) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> k_frag;
          wmma::load_matrix_sync(k_frag, k_s + n * 16 * L::kTileLd + k * 16, L::kTileLd);
          wmma::mma_sync(s_frag[n], q_frag, k_frag, s_frag[n]);
        }
      }
#pragma unroll
      for (int n = 0; n < kKeys / 16; ++n) {
        wmma::store_matrix_sync(scratch + n * 16, s_frag[n], L::kSLd, wmma::mem_row_major);
      }
    }
    __syncwarp();

    // Online softmax of this lane's 32 columns of its row; P to shared memory in bf16.
    float s[32];
    float tile_max = -INFINITY;
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      const int col = half * 32 + c;
      const bool keep = row_valid && key0 + col <= row_pos && key0 + col < kv_len;
      s[c] = keep ? scratch[my_row * L::kSLd + col] * a.scale : -INFINITY;
      tile_max = fmaxf(tile_max, s[c]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, 1));
    const float alpha = SoftmaxRescale(state, tile_max);
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      const float p = s[c] == -INFINITY ? 0.0f : expf(s[c] - state.m);
      sum += p;
      p_w[my_row * L::kPLd + half * 32 + c] = __float2bfloat16_rn(p);
    }
    state.l += sum + __shfl_xor_sync(kFullMask, sum, 1);
    if (half == 0) alpha_w[my_row] = alpha;
    __syncwarp();

    // scratch = P_w V: [16, head_dim]; then O = O * alpha + scratch, row by row.
#pragma unroll
    for (int n = 0; n < kHeadDim / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
      wmma::fill_fragment(o_frag, 0.0f);
#pragma unroll
      for (int k = 0; k < kKeys / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> p_frag;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> v_frag;
        wmma::load_matrix_sync(p_frag, p_w + k * 16, L::kPLd);
        wmma::load_matrix_sync(v_frag, v_s + k * 16 * L::kTileLd + n * 16, L::kTileLd);
        wmma::mma_sync(o_frag, p_frag, v_frag, o_frag);
      }
      wmma::store_matrix_sync(scratch + n * 16, o_frag, L::kPvLd, wmma::mem_row_major);
    }
    __syncwarp();
    for (int i = lane; i < kWarpRows * kHeadDim; i += 32) {
      const int r = i / kHeadDim;
      o_w[i] = o_w[i] * alpha_w[r] + scratch[r * L::kPvLd + i % kHeadDim];
    }
    __syncwarp();
  }

  if (half == 0) l_w[my_row] = state.l;
  __syncwarp();
  __nv_bfloat16* out = AsDevice(a.out);
  for (int i = lane; i < kWarpRows * kHeadDim; i += 32) {
    const int r = i / kHeadDim, d = i % kHeadDim;
    const int row = warp * kWarpRows + r;
    if (row >= q_rows) continue;
    const float l = l_w[r];
    const int head = kvh * group + row % group;
    out[(int64_t{first_row + row / group} * a.n_heads + head) * kHeadDim + d] =
        __float2bfloat16_rn(l > 0.0f ? o_w[i] / l : 0.0f);
  }
}

template <int kHeadDim>
void Launch(const PrefillAttentionArgs& a, Stream stream) {
  constexpr size_t kBytes = Smem<kHeadDim>::kBytes;
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
