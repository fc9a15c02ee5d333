// SwiGLU: a grid-stride loop over 4-element groups; f32 math, bf16 out.
#include "kernels/cuda/activation.h"
#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float Silu(float x) { return x / (1.0f + expf(-x)); }

__global__ void __launch_bounds__(kThreads) SiluMulKernel(SiluMulArgs a) {
  const int groups_per_row = a.width / 4;
  const int64_t total = int64_t{a.n_rows} * groups_per_row;
  for (int64_t g = blockIdx.x * int64_t{kThreads} + threadIdx.x; g < total;
       g += int64_t{gridDim.x} * kThreads) {
    const int64_t r = g / groups_per_row;
    const int c = static_cast<int>(g % groups_per_row) * 4;
    const float* row = a.gate_up + r * 2 * a.width;
    const float4 gate = *reinterpret_cast<const float4*>(row + c);
    const float4 up = *reinterpret_cast<const float4*>(row + a.width + c);
    __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(AsDevice(a.out) + r * a.width + c);
    out[0] = __floats2bfloat162_rn(Silu(gate.x) * up.x, Silu(gate.y) * up.y);
    out[1] = __floats2bfloat162_rn(Silu(gate.z) * up.z, Silu(gate.w) * up.w);
  }
}

}  // namespace

void SiluMul(const SiluMulArgs& args, Stream stream) {
  if (args.n_rows == 0) return;
  TROUPE_CHECK(args.width % 4 == 0);
  const int64_t groups = int64_t{args.n_rows} * (args.width / 4);
  const int blocks = static_cast<int>(std::min<int64_t>((groups + kThreads - 1) / kThreads, 65536));
  SiluMulKernel<<<blocks, kThreads, 0, stream>>>(args);
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
