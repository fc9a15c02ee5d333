// Rotary position embedding, in place, for Llama-family models as GGUF stores them.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe {

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct RopeConfig {
  int head_dim = 0;
  int rot_dim = 0;            // rotated dims per head (rope.dimension_count); <= head_dim, even
  float theta = 10000.0f;     // rope.freq_base
  bool neox = false;          // false: rotate pairs (2i, 2i+1) (llama GGUF); true: (i, i+rot/2)
  RopeScaling scaling = RopeScaling::kNone;
  float factor = 1.0f;        // linear: positions / factor; llama3: low-frequency divisor
  float low_freq_factor = 1.0f;    // llama3 only
  float high_freq_factor = 4.0f;   // llama3 only
  int original_context = 8192;     // llama3 only: original max positions
};

// Inverse frequencies [rot_dim/2] including any scaling: angle(pos, i) = pos * inv_freq[i].
std::vector<float> RopeInvFreq(const RopeConfig& config);

struct RopeArgs {
  float* x = nullptr;               // [n_tokens, n_heads, head_dim], rotated in place
  const int32_t* positions = nullptr;  // [n_tokens]
  const float* inv_freq = nullptr;  // [rot_dim/2] from RopeInvFreq
  int64_t n_tokens = 0;
  int n_heads = 0;
  int head_dim = 0;
  int rot_dim = 0;
  bool neox = false;
};

namespace ref {
void Rope(const RopeArgs& args);
}  // namespace ref

}  // namespace troupe
