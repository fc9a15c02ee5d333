// Shared by the .cu files: the error check (cuda_check.h), bf16 vector loads, warp and block
// reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/ggml_types.h"

namespace troupe::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

__host__ __device__ __forceinline__ const __nv_bfloat16* AsDevice(const Bf16* p) {
  return reinterpret_cast<const __nv_bfloat16*>(p);
}
__host__ __device__ __forceinline__ __nv_bfloat16* AsDevice(Bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

// 8 bf16 values (16 bytes) widened to float.
__device__ __forceinline__ void Bf16x8ToFloat(const uint4& raw, float* out) {
  const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Sum over the block; every thread gets the result. `scratch` holds >= 32 floats.
// REQUIRES: blockDim.x is a multiple of 32; every thread of the block calls it.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < num_warps ? scratch[lane] : 0.0f;
  return WarpSum(v);
}

__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < num_warps ? scratch[lane] : -INFINITY;
  return WarpMax(v);
}

}  // namespace troupe::cuda
