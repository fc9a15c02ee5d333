// Fused residual-add + RMSNorm: one block per row, f32 throughout, bf16 only on the way out.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/norm.h"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) AddRmsNormKernel(AddRmsNormArgs a) {
  __shared__ float scratch[32];
  const int i = blockIdx.x;
  const int64_t r = a.rows != nullptr ? a.rows[i] : i;
  float4* x = reinterpret_cast<float4*>(a.x + r * a.dim);
  const float4* d = a.delta != nullptr ? reinterpret_cast<const float4*>(a.delta + r * a.dim)
                                       : nullptr;
  const int n4 = a.dim / 4;
  // Pass 1: add the branch, write the residual back, sum squares.
  float sum_sq = 0.0f;
  for (int j = threadIdx.x; j < n4; j += kThreads) {
    float4 v = x[j];
    if (d != nullptr) {
      const float4 e = d[j];
      v.x += e.x;
      v.y += e.y;
      v.z += e.z;
      v.w += e.w;
      x[j] = v;
    }
    sum_sq += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  sum_sq = BlockSum(sum_sq, scratch);
  const float scale = rsqrtf(sum_sq / a.dim + a.eps);
  // Pass 2: normalise (this thread's own elements, already written back; no barrier needed).
  const float4* w = reinterpret_cast<const float4*>(a.weight);
  __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(AsDevice(a.out) + int64_t{i} * a.dim);
  float4* out_f32 = a.out_f32 != nullptr ? reinterpret_cast<float4*>(a.out_f32 + int64_t{i} * a.dim)
                                         : nullptr;
  for (int j = threadIdx.x; j < n4; j += kThreads) {
    const float4 v = x[j];
    const float4 g = w[j];
    const float4 y = make_float4(v.x * scale * g.x, v.y * scale * g.y, v.z * scale * g.z,
                                 v.w * scale * g.w);
    out[2 * j] = __floats2bfloat162_rn(y.x, y.y);
    out[2 * j + 1] = __floats2bfloat162_rn(y.z, y.w);
    if (out_f32 != nullptr) out_f32[j] = y;
  }
}

}  // namespace

void AddRmsNorm(const AddRmsNormArgs& args, Stream stream) {
  if (args.n_rows == 0) return;
  TROUPE_CHECK(args.dim % 8 == 0);
  AddRmsNormKernel<<<args.n_rows, kThreads, 0, stream>>>(args);
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
