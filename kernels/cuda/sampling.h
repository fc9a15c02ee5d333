// Token sampling on the GPU, one row of logits per sequence, with no host round trip: the step
// reads back only the chosen ids. Greedy, temperature, top-k, top-p and min-p, in the order of
// the CPU sampler (engine/sampler/sampler.h): top-k, softmax with temperature, top-p, min-p.
//
// The kept set is found by bisection on a probability threshold, exact over the float bit
// patterns (no sort; any gap between the best and the k-th token): top-k keeps the
// tokens at or above the k-th largest probability (ties at the boundary are all kept), top-p
// the smallest such prefix whose mass reaches top_p. The draw is an inverse-CDF walk in id
// order with a uniform from (seed, counter): the same seed and counter give the same token in
// any batch. Penalties and logprobs stay on the CPU path.
#pragma once

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace troupe::cuda {

struct SampleRowParams {
  float temperature = 1.0f;  // 0 = greedy (argmax, ties to the lower id)
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;
  uint64_t counter = 0;      // the draw's index within the request (tokens generated so far)
};

struct SampleArgs {
  const float* logits = nullptr;           // [n_rows, vocab]
  const SampleRowParams* params = nullptr; // [n_rows]
  int32_t* ids = nullptr;                  // [n_rows] output
  int n_rows = 0;
  int vocab = 0;
};

// One block per row. Device pointers; asynchronous on `stream`.
void Sample(const SampleArgs& args, Stream stream);

// The uniform in [0, 1) that row (seed, counter) draws: exposed for tests.
float SampleUniform(uint64_t seed, uint64_t counter);

}  // namespace troupe::cuda
