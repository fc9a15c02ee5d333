// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight, row by row.
#pragma once

#include <cstdint>

namespace troupe {

struct RmsNormArgs {
  const float* x = nullptr;       // [n_rows, dim]
  const float* weight = nullptr;  // [dim]
  float* out = nullptr;           // [n_rows, dim]; may alias x
  int64_t n_rows = 0;
  int dim = 0;
  float eps = 1e-5f;
};

namespace ref {
void RmsNorm(const RmsNormArgs& args);
}  // namespace ref

}  // namespace troupe
