// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight, row by row; and the fused form that first
// adds a residual branch's output into x (the residual stream) and then normalises it.
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

struct AddRmsNormArgs {
  float* x = nullptr;             // [n_rows, dim] residual stream; x += delta in place
  const float* delta = nullptr;   // [n_rows, dim] branch output to add; nullptr = add nothing
  const float* weight = nullptr;  // [dim]
  float* out = nullptr;           // [n_rows, dim] normalised x; may alias delta (not x)
  int64_t n_rows = 0;
  int dim = 0;
  float eps = 1e-5f;
};

namespace ref {
void RmsNorm(const RmsNormArgs& args);
// Per row: x += delta, then out = RmsNorm(x). The CPU backend's residual step between blocks.
void AddRmsNorm(const AddRmsNormArgs& args);
}  // namespace ref

}  // namespace troupe
