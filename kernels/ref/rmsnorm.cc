// Reference RMSNorm; also the CPU backend's implementation. Stateless; safe from any thread.
#include "kernels/rmsnorm.h"

#include <cmath>

#include "common/check.h"

namespace troupe::ref {

namespace {
// Sum of squares of x[0, n) in double, in kLanes independent partial sums so the compiler can
// vectorize the loop without reassociating (no fast-math needed).
double SumSquares(const float* x, int n) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += static_cast<double>(x[i + j]) * x[i + j];
  }
  double sum = 0.0;
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}
}  // namespace

void RmsNorm(const RmsNormArgs& args) {
  TROUPE_CHECK(args.dim > 0 && args.n_rows >= 0);
  const int dim = args.dim;
  for (int64_t r = 0; r < args.n_rows; ++r) {
    const float* x = args.x + r * dim;
    float* out = args.out + r * dim;
    // 1) scale = 1 / sqrt(mean(x^2) + eps), accumulated in double.
    const double mean_sq = SumSquares(x, dim) / dim;
    const float scale = static_cast<float>(1.0 / std::sqrt(mean_sq + args.eps));
    // 2) out = x * scale * weight; reads x[i] before writing out[i], so out may alias x.
    for (int i = 0; i < dim; ++i) out[i] = x[i] * scale * args.weight[i];
  }
}

void AddRmsNorm(const AddRmsNormArgs& args) {
  TROUPE_CHECK(args.dim > 0 && args.n_rows >= 0 && args.out != args.x);
  const int dim = args.dim;
  for (int64_t r = 0; r < args.n_rows; ++r) {
    float* x = args.x + r * dim;
    if (args.delta != nullptr) {
      const float* delta = args.delta + r * dim;
      for (int i = 0; i < dim; ++i) x[i] += delta[i];
    }
    RmsNorm({.x = x, .weight = args.weight, .out = args.out + r * dim, .n_rows = 1, .dim = dim,
             .eps = args.eps});
  }
}

}  // namespace troupe::ref
