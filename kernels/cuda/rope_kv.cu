// RoPE + paged KV write: one block per token. The token's cos/sin table is computed once (in
// double, like ref::Rope) into shared memory, then threads walk (head, dim) of Q, K and V.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope_kv.h"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxPairs = 256;

// Element e of a rotated head: reads the pair it belongs to from `src` (plus `bias`, when not
// null, at the same offsets).
__device__ __forceinline__ float RotatedElement(const float* src, const float* bias, int e,
                                                int half, bool neox, const float* cos_t,
                                                const float* sin_t) {
  int i, partner;
  bool first;
  if (neox) {
    first = e < half;
    i = first ? e : e - half;
    partner = first ? e + half : e - half;
  } else {
    first = (e & 1) == 0;
    i = e >> 1;
    partner = first ? e + 1 : e - 1;
  }
  const float x = src[e] + (bias != nullptr ? bias[e] : 0.0f);
  const float y = src[partner] + (bias != nullptr ? bias[partner] : 0.0f);
  // First of pair: x*cos - y*sin; second: first_value*sin + x*cos where first_value = y.
  return first ? x * cos_t[i] - y * sin_t[i] : y * sin_t[i] + x * cos_t[i];
}

__global__ void __launch_bounds__(kThreads) RopeKvWriteKernel(RopeKvWriteArgs a) {
  __shared__ float cos_t[kMaxPairs];
  __shared__ float sin_t[kMaxPairs];
  const int t = blockIdx.x;
  const int half = a.rot_dim / 2;
  const double pos = a.positions[t];
  for (int i = threadIdx.x; i < half; i += kThreads) {
    double s, c;
    sincos(pos * static_cast<double>(a.inv_freq[i]), &s, &c);
    cos_t[i] = static_cast<float>(c);
    sin_t[i] = static_cast<float>(s);
  }
  __syncthreads();
  const int hd = a.head_dim;
  const int q_dim = a.n_heads * hd, kv_dim = a.n_kv_heads * hd;
  const float* row = a.qkv + int64_t{t} * (q_dim + 2 * kv_dim);
  const int64_t slot = a.slots[t];
  __nv_bfloat16* q_out = AsDevice(a.q_out) + int64_t{t} * q_dim;
  __nv_bfloat16* k_out = slot >= 0 ? AsDevice(a.k_cache) + slot * kv_dim : nullptr;
  __nv_bfloat16* v_out = slot >= 0 ? AsDevice(a.v_cache) + slot * kv_dim : nullptr;
  // Q and K: heads laid out back to back, [n_heads + n_kv_heads, hd].
  for (int j = threadIdx.x; j < q_dim + kv_dim; j += kThreads) {
    const int head = j / hd, e = j % hd;
    const float* src = row + head * hd;
    const float* bias = a.bias != nullptr ? a.bias + head * hd : nullptr;
    const float value = e < a.rot_dim
                            ? RotatedElement(src, bias, e, half, a.neox, cos_t, sin_t)
                            : src[e] + (bias != nullptr ? bias[e] : 0.0f);
    if (j < q_dim) {
      q_out[j] = __float2bfloat16_rn(value);
    } else if (k_out != nullptr) {
      k_out[j - q_dim] = __float2bfloat16_rn(value);
    }
  }
  if (v_out != nullptr) {
    const float* v = row + q_dim + kv_dim;
    const float* bv = a.bias != nullptr ? a.bias + q_dim + kv_dim : nullptr;
    for (int j = threadIdx.x; j < kv_dim; j += kThreads) {
      v_out[j] = __float2bfloat16_rn(v[j] + (bv != nullptr ? bv[j] : 0.0f));
    }
  }
}

}  // namespace

void RopeKvWrite(const RopeKvWriteArgs& args, Stream stream) {
  if (args.n_tokens == 0) return;
  TROUPE_CHECK(args.rot_dim % 2 == 0 && args.rot_dim / 2 <= kMaxPairs && args.rot_dim <= args.head_dim);
  RopeKvWriteKernel<<<args.n_tokens, kThreads, 0, stream>>>(args);
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
