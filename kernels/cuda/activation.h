// SwiGLU on the GPU: out = silu(gate) * up; its reference is ref::SiluMul (kernels/silu_mul.h).
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

namespace troupe::cuda {

struct SiluMulArgs {
  const float* gate_up = nullptr;  // [n_rows, 2 * width]: gate then up, per row (fused GEMM)
  Bf16* out = nullptr;             // [n_rows, width]
  int n_rows = 0;
  int width = 0;                   // REQUIRES: width % 4 == 0
};

// f32 math (expf), bf16 out. Device pointers; asynchronous on `stream`.
void SiluMul(const SiluMulArgs& args, Stream stream);

}  // namespace troupe::cuda
