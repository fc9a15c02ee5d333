// Reference SwiGLU activation; also the CPU backend's implementation. Safe from any thread.
#include "kernels/silu_mul.h"

#include <cmath>

#include "common/check.h"

namespace troupe::ref {

void SiluMul(const SiluMulArgs& args) {
  TROUPE_CHECK(args.n >= 0);
  // silu(g) = g * sigmoid(g) = g / (1 + exp(-g)). For g -> -inf exp(-g) overflows to inf and
  // the quotient is -0, never NaN. Elementwise at the same index, so out may alias gate or up.
  for (int64_t i = 0; i < args.n; ++i) {
    const float g = args.gate[i];
    args.out[i] = g / (1.0f + std::exp(-g)) * args.up[i];
  }
}

}  // namespace troupe::ref
