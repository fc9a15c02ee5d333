// Token embedding lookup on the GPU: bf16 table rows widened into the f32 residual stream.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

namespace troupe::cuda {

struct EmbedArgs {
  const Bf16* table = nullptr;      // [vocab, dim]
  const int32_t* tokens = nullptr;  // [n_tokens]; REQUIRES: 0 <= id < vocab
  float* out = nullptr;             // [n_tokens, dim]
  int n_tokens = 0;
  int dim = 0;                      // REQUIRES: dim % 8 == 0
};

void Embed(const EmbedArgs& args, Stream stream);

}  // namespace troupe::cuda
