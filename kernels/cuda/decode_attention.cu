// Paged decode attention (split-KV, GQA-aware) and the log-sum-exp merge of its splits.
//
// Block = (item, kv head, split), 4 warps, built for bandwidth. The split's keys are walked in
// tiles of kTileKeys rows; a tile's K and V rows are copied into shared memory with 16-byte
// cp.async, head_dim / 8 consecutive threads per 2*head_dim-byte row (so a row is one coalesced
// run), through a kStages-deep pipeline: while the block computes tile t, the copies of tile
// t + kStages - 1 are in flight. The page ids of the split are staged in shared memory
// (kPageWindow at a time), so issuing a copy costs no dependent global load.
//
// Compute: the block reads a tile in passes of kRowsPerPass rows; each row is held by a *lane
// group* of head_dim / 8 lanes, one 16-byte chunk (8 dims) of K and of V each. For every query
// head of the GQA group (queries in shared memory, already scaled) a lane dots its 8 dims and
// the group sums by shuffles; each lane group keeps its own online softmax and output
// accumulator for its 8 dims (the lane that scored a key holds that key's V chunk, so no
// probabilities go through shared memory). At the end the lane groups of a warp merge by
// shuffles and the warps through shared memory, which reuses the pipeline's buffers.
#include <cuda_pipeline.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/paged_index.h"
#include "kernels/softmax_merge.h"

namespace troupe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxGroup = 8;
constexpr int kStages = 2;        // tiles in shared memory: one computed, the rest in flight
constexpr int kPageWindow = 256;  // page ids staged at a time (>= the pages of one tile)
// Occupancy the split kernel is built for: registers are capped at 65536 / (4 * 128) = 128 per
// thread. The split heuristic does not assume it; it asks cudaOccupancy* what the build got.
constexpr int kMinBlocksPerSm = 4;

template <int kHeadDim>
struct Tiling {
  static constexpr int kLanesPerRow = kHeadDim / 8;  // 16-byte chunks of a K or V row
  static constexpr int kRowsPerWarp = 32 / kLanesPerRow;
  static constexpr int kRowsPerPass = kWarps * kRowsPerWarp;
  static constexpr int kTileKeys = kRowsPerPass > 32 ? kRowsPerPass : 32;
  static constexpr int kPasses = kTileKeys / kRowsPerPass;
  static constexpr int kChunksPerThread = kTileKeys * kLanesPerRow / kThreads;  // per K or V
  static_assert(kTileKeys * kLanesPerRow % kThreads == 0, "a tile is whole rounds of copies");
  static_assert(kTileKeys <= kPageWindow, "a tile's pages fit the window at block size 1");
};

template <int kHeadDim>
struct SplitShared {
  using T = Tiling<kHeadDim>;
  union {
    struct {
      uint4 k[kStages][T::kTileKeys][T::kLanesPerRow];  // bf16 rows, 8 per uint4
      uint4 v[kStages][T::kTileKeys][T::kLanesPerRow];
    } tiles;
    struct {  // after the last tile: each warp's merged state
      float o[kWarps][kMaxGroup][kHeadDim];
      float m[kWarps][kMaxGroup];
      float l[kWarps][kMaxGroup];
    } merge;
  };
  float q[kMaxGroup][kHeadDim];  // the group's queries times the scale
  int32_t pages[kPageWindow];    // table[window_first + i]
};

// Running softmax of one lane group for all query heads: max, sum, and the unnormalised output
// of the lane's 8 dims.
struct GroupState {
  float m[kMaxGroup];
  float l[kMaxGroup];
  float acc[kMaxGroup][8];
};

// Folds (m_o, l_o, acc_o) of the lane `offset` lanes away into `st` (all lanes call it).
__device__ __forceinline__ void MergeWithLane(GroupState& st, int group, int offset) {
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    if (h < group) {
      const float m_o = __shfl_xor_sync(kFullMask, st.m[h], offset);
      const float l_o = __shfl_xor_sync(kFullMask, st.l[h], offset);
      const float m_new = fmaxf(st.m[h], m_o);
      const float a_self = st.m[h] == -INFINITY ? 0.0f : expf(st.m[h] - m_new);
      const float a_other = m_o == -INFINITY ? 0.0f : expf(m_o - m_new);
      st.l[h] = st.l[h] * a_self + l_o * a_other;
#pragma unroll
      for (int d = 0; d < 8; ++d) {
        const float acc_o = __shfl_xor_sync(kFullMask, st.acc[h][d], offset);
        st.acc[h][d] = st.acc[h][d] * a_self + acc_o * a_other;
      }
      st.m[h] = m_new;
    }
  }
}

// Folds one key row into the lane group's state: its score against every query head (the
// lane's 8 dims, summed over the lane group by shuffles), then the online-softmax update with
// the lane's V chunk. `q` is &queries[0][chunk * 8] of a [kMaxGroup][kHeadDim] array. Every
// lane of the warp calls it (shuffles); a row that is not `valid` is scored and dropped.
template <int kHeadDim>
__device__ __forceinline__ void FoldRow(GroupState& st, const float* q, const uint4& k_raw,
                                        const uint4& v_raw, int group, bool valid) {
  float k8[8], v8[8];
  Bf16x8ToFloat(k_raw, k8);
  Bf16x8ToFloat(v_raw, v8);
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    if (h < group) {
      const float4 qa = *reinterpret_cast<const float4*>(q + h * kHeadDim);
      const float4 qb = *reinterpret_cast<const float4*>(q + h * kHeadDim + 4);
      float s = qa.x * k8[0] + qa.y * k8[1] + qa.z * k8[2] + qa.w * k8[3] + qb.x * k8[4] +
                qb.y * k8[5] + qb.z * k8[6] + qb.w * k8[7];
#pragma unroll
      for (int offset = Tiling<kHeadDim>::kLanesPerRow / 2; offset > 0; offset >>= 1) {
        s += __shfl_xor_sync(kFullMask, s, offset);  // stays inside the lane group
      }
      if (valid) {
        const float m_new = fmaxf(st.m[h], s);
        const float alpha = expf(st.m[h] - m_new);  // 0 while nothing was seen (m = -inf)
        const float p = expf(s - m_new);
        st.l[h] = st.l[h] * alpha + p;
#pragma unroll
        for (int d = 0; d < 8; ++d) st.acc[h][d] = st.acc[h][d] * alpha + p * v8[d];
        st.m[h] = m_new;
      }
    }
  }
}

// The block's result from its warps' states in sh.merge: the normalised output of each query
// head of the group, into `out` (one split) or the split's partial output and log-sum-exp.
// REQUIRES: sh.merge is written and published by a barrier.
template <int kHeadDim>
__device__ __forceinline__ void MergeWarpsAndStore(const SplitShared<kHeadDim>& sh,
                                                   const DecodeAttentionArgs& a, int group,
                                                   int row) {
  const int item = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  for (int i = threadIdx.x; i < group * kHeadDim; i += kThreads) {
    const int h = i / kHeadDim, d = i % kHeadDim;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, sh.merge.m[w][h]);
    float l = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (sh.merge.m[w][h] != -INFINITY) {
        const float f = expf(sh.merge.m[w][h] - m);
        l += sh.merge.l[w][h] * f;
        o += sh.merge.o[w][h][d] * f;
      }
    }
    const float result = l > 0.0f ? o / l : 0.0f;
    const int head = kvh * group + h;
    if (a.num_splits == 1) {
      AsDevice(a.out)[(int64_t{row} * a.n_heads + head) * kHeadDim + d] = __float2bfloat16_rn(result);
    } else {
      const int64_t part = (int64_t{item} * a.n_heads + head) * a.num_splits + split;
      a.partial_out[part * kHeadDim + d] = result;
      if (d == 0) a.partial_lse[part] = l > 0.0f ? m + logf(l) : -INFINITY;
    }
  }
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSm) DecodeSplitKernel(DecodeAttentionArgs a) {
  using T = Tiling<kHeadDim>;
  __shared__ __align__(16) SplitShared<kHeadDim> sh;

  const int item = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int chunk = lane % T::kLanesPerRow;  // this lane's dims: chunk * 8 .. chunk * 8 + 7
  const int row_slot = warp * T::kRowsPerWarp + lane / T::kLanesPerRow;  // row within a pass
  const int group = a.n_heads / a.kv.n_kv_heads;
  const int row = a.item_row[item];
  const int bs = a.kv.block_size;
  const KeyRange range = SplitKeyRange(a.item_len[item], a.num_splits, split, bs);
  const int n_tiles = range.end > range.begin ? CeilDiv(range.end - range.begin, T::kTileKeys) : 0;

  const __nv_bfloat16* q = AsDevice(a.q) + (int64_t{row} * a.n_heads + kvh * group) * kHeadDim;
  for (int i = threadIdx.x; i < group * kHeadDim; i += kThreads) {
    sh.q[i / kHeadDim][i % kHeadDim] = __bfloat162float(q[i]) * a.scale;
  }

  const int64_t kv_dim = int64_t{a.kv.n_kv_heads} * kHeadDim;
  const int32_t* table = a.kv.kv_indices + a.kv.kv_indptr[a.item_seq[item]];
  const __nv_bfloat16* k_base = AsDevice(a.kv.k_cache) + kvh * kHeadDim;
  const __nv_bfloat16* v_base = AsDevice(a.kv.v_cache) + kvh * kHeadDim;
  const int n_pages = CeilDiv(range.end, bs);  // table entries this split may read
  int window_first = -kPageWindow;             // the same in every thread

  // Issues the copies of tile t into stage t % kStages (uncommitted). Called by the whole block
  // with the same t; refills the page window (two barriers) when the tile runs past it.
  auto load_tile = [&](int t) {
    const int first_key = range.begin + t * T::kTileKeys;
    const int last_key = min(first_key + T::kTileKeys, range.end) - 1;
    if (last_key / bs >= window_first + kPageWindow) {
      __syncthreads();  // no thread still reads the old window
      window_first = first_key / bs;
      const int n = min(kPageWindow, n_pages - window_first);
      for (int i = threadIdx.x; i < n; i += kThreads) sh.pages[i] = table[window_first + i];
      __syncthreads();
    }
    const int stage = t % kStages;
#pragma unroll
    for (int c = 0; c < T::kChunksPerThread; ++c) {
      const int idx = threadIdx.x + c * kThreads;
      const int r = idx / T::kLanesPerRow, part = idx % T::kLanesPerRow;
      const int key = first_key + r;
      if (key < range.end) {
        const int64_t slot = int64_t{sh.pages[key / bs - window_first]} * bs + key % bs;
        const int64_t offset = slot * kv_dim + part * 8;
        __pipeline_memcpy_async(&sh.tiles.k[stage][r][part], k_base + offset, 16);
        __pipeline_memcpy_async(&sh.tiles.v[stage][r][part], v_base + offset, 16);
      }
    }
  };

  GroupState st;
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    st.m[h] = -INFINITY;
    st.l[h] = 0.0f;
#pragma unroll
    for (int d = 0; d < 8; ++d) st.acc[h][d] = 0.0f;
  }

  // Every iteration commits one group (empty past the last tile), so waiting for all but the
  // newest kStages - 2 groups retires every group up to the tile about to be computed.
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_tile(t);
    __pipeline_commit();
  }
  for (int t = 0; t < n_tiles; ++t) {
    __pipeline_wait_prior(kStages - 2);
    // Publishes every thread's copies of tile t (and the queries), and frees the stage of tile
    // t - 1, which the next load overwrites.
    __syncthreads();
    if (t + kStages - 1 < n_tiles) load_tile(t + kStages - 1);
    __pipeline_commit();

    const int stage = t % kStages;
    const int tile_keys = min(T::kTileKeys, range.end - (range.begin + t * T::kTileKeys));
#pragma unroll
    for (int pass = 0; pass < T::kPasses; ++pass) {
      if (pass * T::kRowsPerPass >= tile_keys) break;  // the same in every thread
      const int r = pass * T::kRowsPerPass + row_slot;
      // Rows past the tile's end hold stale data: scored, not used.
      FoldRow<kHeadDim>(st, &sh.q[0][chunk * 8], sh.tiles.k[stage][r][chunk],
                        sh.tiles.v[stage][r][chunk], group, r < tile_keys);
    }
  }

  // ---- merge: lane groups of a warp by shuffles, then warps through shared memory ----
#pragma unroll
  for (int offset = T::kLanesPerRow; offset < 32; offset <<= 1) MergeWithLane(st, group, offset);
  __syncthreads();  // the merge area aliases the tiles, which the last pass may still read
  if (lane < T::kLanesPerRow) {
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h < group) {
        float* o = &sh.merge.o[warp][h][chunk * 8];
        *reinterpret_cast<float4*>(o) =
            make_float4(st.acc[h][0], st.acc[h][1], st.acc[h][2], st.acc[h][3]);
        *reinterpret_cast<float4*>(o + 4) =
            make_float4(st.acc[h][4], st.acc[h][5], st.acc[h][6], st.acc[h][7]);
        if (lane == 0) {
          sh.merge.m[warp][h] = st.m[h];
          sh.merge.l[warp][h] = st.l[h];
        }
      }
    }
  }
  __syncthreads();
  MergeWarpsAndStore<kHeadDim>(sh, a, group, row);
}

// Block = (item, head): out = sum over splits of LseMergeWeight * partial.
__global__ void __launch_bounds__(kThreads) MergeSplitsKernel(DecodeAttentionArgs a) {
  const int item = blockIdx.x, head = blockIdx.y;
  const int hd = a.kv.head_dim;
  const int64_t part0 = (int64_t{item} * a.n_heads + head) * a.num_splits;
  float lse = -INFINITY;
  for (int s = 0; s < a.num_splits; ++s) lse = LseAdd(lse, a.partial_lse[part0 + s]);
  __nv_bfloat16* out = AsDevice(a.out) + (int64_t{a.item_row[item]} * a.n_heads + head) * hd;
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float o = 0.0f;
    for (int s = 0; s < a.num_splits; ++s) {
      const float w = LseMergeWeight(a.partial_lse[part0 + s], lse);
      if (w > 0.0f) o += w * a.partial_out[(part0 + s) * hd + d];
    }
    out[d] = __float2bfloat16_rn(o);
  }
}

template <int kHeadDim>
void LaunchSplit(const DecodeAttentionArgs& a, Stream stream) {
  // Items on x (up to 2^31 - 1: a long prefill of a tiny-head model is all items); splits on z.
  const dim3 grid(a.n_items, a.kv.n_kv_heads, a.num_splits);
  DecodeSplitKernel<kHeadDim><<<grid, kThreads, 0, stream>>>(a);
}

template <int kHeadDim>
int BlocksPerSm() {
  int blocks = 0;
  TROUPE_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeSplitKernel<kHeadDim>, kThreads, 0));
  return blocks;
}

}  // namespace

int DecodeAttentionBlocksPerSm(int head_dim) {
  switch (head_dim) {
    case 8: return BlocksPerSm<8>();
    case 16: return BlocksPerSm<16>();
    case 32: return BlocksPerSm<32>();
    case 64: return BlocksPerSm<64>();
    case 128: return BlocksPerSm<128>();
    default: return 0;
  }
}

bool DecodeAttentionSupports(int head_dim, int group) {
  const bool dim_ok = head_dim == 8 || head_dim == 16 || head_dim == 32 || head_dim == 64 ||
                      head_dim == 128;
  return dim_ok && group >= 1 && group <= kMaxGroup;
}

void DecodeAttention(const DecodeAttentionArgs& a, Stream stream) {
  if (a.n_items == 0) return;
  TROUPE_CHECK(a.kv.n_kv_heads > 0 && a.n_heads % a.kv.n_kv_heads == 0);
  TROUPE_CHECK(DecodeAttentionSupports(a.kv.head_dim, a.n_heads / a.kv.n_kv_heads));
  TROUPE_CHECK(a.num_splits >= 1 &&
               (a.num_splits == 1 || (a.partial_out != nullptr && a.partial_lse != nullptr)));
  switch (a.kv.head_dim) {
    case 8: LaunchSplit<8>(a, stream); break;
    case 16: LaunchSplit<16>(a, stream); break;
    case 32: LaunchSplit<32>(a, stream); break;
    case 64: LaunchSplit<64>(a, stream); break;
    default: LaunchSplit<128>(a, stream); break;
  }
  TROUPE_CUDA_CHECK(cudaGetLastError());
  if (a.num_splits > 1) {
    MergeSplitsKernel<<<dim3(a.n_items, a.n_heads), kThreads, 0, stream>>>(a);
    TROUPE_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace troupe::cuda
