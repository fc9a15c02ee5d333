// Paged decode attention (split-KV, GQA-aware) and the log-sum-exp merge of its splits.
//
// Block = (item, kv head, split), 4 warps. Each warp takes 32-key tiles of the split's range in
// turn: for Q.K each lane owns one key (its whole K row, 16-byte loads) and the query heads of
// the group come from shared memory as broadcasts; for P.V each lane owns head_dim / 32 output
// dims and walks the tile's keys. Warps keep their own online-softmax state (kernels/
// softmax_merge.h) and merge through shared memory at the end.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/paged_index.h"
#include "kernels/softmax_merge.h"

namespace troupe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxGroup = 8;
constexpr int kTileKeys = 32;

// kDims consecutive bf16 values at p (kDims in {1, 2, 4}) widened to float.
template <int kDims>
__device__ __forceinline__ void LoadBf16(const __nv_bfloat16* p, float* out) {
  if constexpr (kDims == 4) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    out[0] = a.x;
    out[1] = a.y;
    out[2] = b.x;
    out[3] = b.y;
  } else if constexpr (kDims == 2) {
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    out[0] = a.x;
    out[1] = a.y;
  } else {
    out[0] = __bfloat162float(*p);
  }
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads) DecodeSplitKernel(DecodeAttentionArgs a) {
  constexpr int kChunks = kHeadDim / 8;                            // 16-byte loads per K row
  constexpr int kDimsPerLane = kHeadDim >= 32 ? kHeadDim / 32 : 1;  // P.V output dims per lane
  __shared__ __align__(16) float q_s[kMaxGroup][kHeadDim];
  __shared__ float p_s[kWarps][kMaxGroup][kTileKeys];
  __shared__ int64_t slot_s[kWarps][kTileKeys];
  __shared__ float m_s[kWarps][kMaxGroup];
  __shared__ float l_s[kWarps][kMaxGroup];
  __shared__ float o_s[kWarps][kMaxGroup][kHeadDim];

  const int item = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = a.n_heads / a.kv.n_kv_heads;
  const int row = a.item_row[item];
  const KeyRange range = SplitKeyRange(a.item_len[item], a.num_splits, split, a.kv.block_size);

  const __nv_bfloat16* q = AsDevice(a.q) + (int64_t{row} * a.n_heads + kvh * group) * kHeadDim;
  for (int i = threadIdx.x; i < group * kHeadDim; i += kThreads) {
    q_s[i / kHeadDim][i % kHeadDim] = __bfloat162float(q[i]) * a.scale;
  }
  __syncthreads();

  const int64_t kv_dim = int64_t{a.kv.n_kv_heads} * kHeadDim;
  const int32_t* table = a.kv.kv_indices + a.kv.kv_indptr[a.item_seq[item]];
  const __nv_bfloat16* k_base = AsDevice(a.kv.k_cache) + kvh * kHeadDim;
  const __nv_bfloat16* v_base = AsDevice(a.kv.v_cache) + kvh * kHeadDim;
  const bool lane_has_dims = lane * kDimsPerLane < kHeadDim;

  SoftmaxState state[kMaxGroup];  // the same in every lane of the warp
  float acc[kMaxGroup][kDimsPerLane];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
#pragma unroll
    for (int d = 0; d < kDimsPerLane; ++d) acc[h][d] = 0.0f;
  }

  for (int tile = range.begin + warp * kTileKeys; tile < range.end; tile += kWarps * kTileKeys) {
    // ---- scores: lane = key ----
    const int key = tile + lane;
    const bool valid = key < range.end;
    const int64_t slot = valid ? PagedSlot(table, key, a.kv.block_size) : 0;
    slot_s[warp][lane] = slot;
    float s[kMaxGroup];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) s[h] = 0.0f;
    if (valid) {
      const uint4* k_row = reinterpret_cast<const uint4*>(k_base + slot * kv_dim);
      uint4 raw[kChunks];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) raw[c] = k_row[c];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        float k8[8];
        Bf16x8ToFloat(raw[c], k8);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
          if (h < group) {
            const float4 qa = *reinterpret_cast<const float4*>(&q_s[h][c * 8]);
            const float4 qb = *reinterpret_cast<const float4*>(&q_s[h][c * 8 + 4]);
            s[h] += qa.x * k8[0] + qa.y * k8[1] + qa.z * k8[2] + qa.w * k8[3] + qb.x * k8[4] +
                    qb.y * k8[5] + qb.z * k8[6] + qb.w * k8[7];
          }
        }
      }
    }
    // ---- online softmax per query head ----
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h < group) {
        const float score = valid ? s[h] : -INFINITY;
        const float alpha = SoftmaxRescale(state[h], WarpMax(score));
#pragma unroll
        for (int d = 0; d < kDimsPerLane; ++d) acc[h][d] *= alpha;
        const float p = valid ? expf(score - state[h].m) : 0.0f;
        state[h].l += WarpSum(p);
        p_s[warp][h][lane] = p;
      }
    }
    __syncwarp();
    // ---- P.V: lane = output dims ----
    const int n_keys = min(kTileKeys, range.end - tile);
    if (lane_has_dims) {
#pragma unroll(kHeadDim >= 64 ? 8 : 4)
      for (int j = 0; j < n_keys; ++j) {
        float v[kDimsPerLane];
        LoadBf16<kDimsPerLane>(v_base + slot_s[warp][j] * kv_dim + lane * kDimsPerLane, v);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
          if (h < group) {
            const float p = p_s[warp][h][j];
#pragma unroll
            for (int d = 0; d < kDimsPerLane; ++d) acc[h][d] += p * v[d];
          }
        }
      }
    }
    __syncwarp();  // p_s and slot_s are rewritten by the next tile
  }

  // ---- merge the warps ----
  if (lane == 0) {
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h < group) {
        m_s[warp][h] = state[h].m;
        l_s[warp][h] = state[h].l;
      }
    }
  }
  if (lane_has_dims) {
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h < group) {
#pragma unroll
        for (int d = 0; d < kDimsPerLane; ++d) o_s[warp][h][lane * kDimsPerLane + d] = acc[h][d];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * kHeadDim; i += kThreads) {
    const int h = i / kHeadDim, d = i % kHeadDim;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, m_s[w][h]);
    float l = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (m_s[w][h] != -INFINITY) {
        const float f = expf(m_s[w][h] - m);
        l += l_s[w][h] * f;
        o += o_s[w][h][d] * f;
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

}  // namespace

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
