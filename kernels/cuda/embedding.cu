// Embedding gather: one block per token, 16-byte loads of the bf16 row.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/embedding.h"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) EmbedKernel(EmbedArgs a) {
  const int t = blockIdx.x;
  const uint4* row = reinterpret_cast<const uint4*>(AsDevice(a.table) + int64_t{a.tokens[t]} * a.dim);
  float* out = a.out + int64_t{t} * a.dim;
  for (int c = threadIdx.x; c < a.dim / 8; c += kThreads) {
    float v[8];
    Bf16x8ToFloat(row[c], v);
    reinterpret_cast<float4*>(out)[2 * c] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(out)[2 * c + 1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

}  // namespace

void Embed(const EmbedArgs& args, Stream stream) {
  if (args.n_tokens == 0) return;
  TROUPE_CHECK(args.dim % 8 == 0);
  EmbedKernel<<<args.n_tokens, kThreads, 0, stream>>>(args);
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
