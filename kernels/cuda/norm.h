// Fused residual-add + RMSNorm on the GPU; its reference is ref::AddRmsNorm (kernels/rmsnorm.h).
// The residual stream stays f32; the normalised rows come out in bf16, ready for a GEMM.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

namespace troupe::cuda {

struct AddRmsNormArgs {
  float* x = nullptr;             // [n_x_rows, dim] residual stream, f32; x[r] += delta[r]
  const float* delta = nullptr;   // [n_x_rows, dim] branch output; nullptr = add nothing
  const float* weight = nullptr;  // [dim]
  Bf16* out = nullptr;            // [n_rows, dim] normalised rows
  float* out_f32 = nullptr;       // optional: the same rows in f32 (embeddings), or nullptr
  const int32_t* rows = nullptr;  // [n_rows] distinct rows of x to process (gather);
                                  // nullptr = 0..n_rows-1
  int n_rows = 0;
  int dim = 0;
  float eps = 1e-5f;
};

// One block per output row. Device pointers; asynchronous on `stream`.
// REQUIRES: dim % 8 == 0; pointers 16-byte aligned.
void AddRmsNorm(const AddRmsNormArgs& args, Stream stream);

}  // namespace troupe::cuda
