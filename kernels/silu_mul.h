// SwiGLU activation: out = silu(gate) * up, elementwise.
#pragma once

#include <cstdint>

namespace troupe {

struct SiluMulArgs {
  const float* gate = nullptr;  // [n]
  const float* up = nullptr;    // [n]
  float* out = nullptr;         // [n]; may alias gate or up
  int64_t n = 0;
};

namespace ref {
void SiluMul(const SiluMulArgs& args);
}  // namespace ref

}  // namespace troupe
