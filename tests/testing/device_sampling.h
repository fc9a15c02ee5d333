// The device sampler (kernels/cuda/sampling.h) from the GPU tests: one launch over host rows of
// logits, and whether a draw sits on a near-tie that rounding can tip. Test-thread only.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/sampling.h"
#include "tests/testing/cuda_testing.h"

namespace troupe::testing {

// One launch over rows of logits [n_rows, vocab] with their params; returns the ids.
inline std::vector<int32_t> SampleOnDevice(const DeviceBuffer<float>& logits,
                                           const std::vector<cuda::SampleRowParams>& params, int vocab) {
  const int n_rows = static_cast<int>(params.size());
  TROUPE_CHECK(logits.size() >= static_cast<size_t>(n_rows) * vocab);
  DeviceBuffer<cuda::SampleRowParams> d_params(params);
  DeviceBuffer<int32_t> d_ids(n_rows);
  PoisonNaN(d_ids);  // -1
  cuda::Sample({.logits = logits.get(),
                .params = d_params.get(),
                .ids = d_ids.get(),
                .n_rows = n_rows,
                .vocab = vocab},
               nullptr);
  return d_ids.Download();
}

// Whether the draw `params` makes from `row` changes when every logit moves by at most `delta`
// (independent uniform noise, `trials` perturbed copies in one launch beside the row itself):
// a draw near a boundary of the inverse CDF, or of the top-k or top-p set, tips under
// perturbations of the size of the rounding differences between two runs.
inline bool DrawTipsUnderPerturbation(const std::vector<float>& row, const cuda::SampleRowParams& params,
                                      float delta, int trials = 255) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> noise(-delta, delta);
  std::vector<float> rows = row;
  for (int t = 0; t < trials; ++t) {
    for (const float logit : row) rows.push_back(logit + noise(rng));
  }
  const int vocab = static_cast<int>(row.size());
  const std::vector<int32_t> ids =
      SampleOnDevice(DeviceBuffer<float>(rows), std::vector<cuda::SampleRowParams>(trials + 1, params), vocab);
  for (const int32_t id : ids) {
    if (id != ids[0]) return true;
  }
  return false;
}

}  // namespace troupe::testing
