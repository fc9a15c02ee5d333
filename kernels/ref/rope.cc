// Reference rotary position embedding; also the CPU backend's implementation. Safe from any
// thread (no state; RopeInvFreq allocates its result).
#include "kernels/rope.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "common/check.h"

namespace troupe {

// inv_freq[i] = theta^(-2i / rot_dim), then scaled:
//   kLinear: divided by factor (the same as dividing positions by factor);
//   kLlama3 (Llama 3.1): with wavelen = 2*pi / freq, high-frequency dims (wavelen shorter than
//   original_context / high_freq_factor) are kept, low-frequency dims (wavelen longer than
//   original_context / low_freq_factor) are divided by factor, and the band between blends the
//   two linearly in original_context / wavelen.
// Computed in double and rounded once to float.
std::vector<float> RopeInvFreq(const RopeConfig& config) {
  TROUPE_CHECK_MSG(
      config.rot_dim > 0 && config.rot_dim % 2 == 0 && config.rot_dim <= config.head_dim,
      "rot_dim=%d head_dim=%d", config.rot_dim, config.head_dim);
  TROUPE_CHECK(config.scaling == RopeScaling::kNone || config.factor > 0.0f);
  const int half = config.rot_dim / 2;
  const double low_wavelen = config.original_context / static_cast<double>(config.low_freq_factor);
  const double high_wavelen =
      config.original_context / static_cast<double>(config.high_freq_factor);
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    double freq = std::pow(static_cast<double>(config.theta), -2.0 * i / config.rot_dim);
    switch (config.scaling) {
      case RopeScaling::kNone:
        break;
      case RopeScaling::kLinear:
        freq /= config.factor;
        break;
      case RopeScaling::kLlama3: {
        const double wavelen = 2.0 * std::numbers::pi / freq;
        if (wavelen < high_wavelen) break;  // high frequency: unchanged
        if (wavelen > low_wavelen) {        // low frequency: fully scaled
          freq /= config.factor;
          break;
        }
        // Middle band (empty unless high_freq_factor > low_freq_factor): smooth = 0 at
        // wavelen == low_wavelen (fully scaled), 1 at wavelen == high_wavelen (unchanged).
        if (config.high_freq_factor > config.low_freq_factor) {
          const double smooth = (config.original_context / wavelen - config.low_freq_factor) /
                                (config.high_freq_factor - config.low_freq_factor);
          freq = (1.0 - smooth) * freq / config.factor + smooth * freq;
        }
        break;
      }
    }
    inv_freq[i] = static_cast<float>(freq);
  }
  return inv_freq;
}

namespace ref {

void Rope(const RopeArgs& args) {
  TROUPE_CHECK_MSG(args.rot_dim > 0 && args.rot_dim % 2 == 0 && args.rot_dim <= args.head_dim,
                   "rot_dim=%d head_dim=%d", args.rot_dim, args.head_dim);
  const int half = args.rot_dim / 2;
  // Pair i is (2i, 2i+1) (GGUF llama order) or (i, i + half) (neox); both use inv_freq[i].
  const int first_stride = args.neox ? 1 : 2;
  const int second_offset = args.neox ? half : 1;
  std::vector<float> cos_t(half);
  std::vector<float> sin_t(half);
  for (int64_t t = 0; t < args.n_tokens; ++t) {
    // 1) Angles for this token, in double (pos * inv_freq reaches thousands of radians), shared
    //    by all heads.
    const double pos = args.positions[t];
    for (int i = 0; i < half; ++i) {
      const double angle = pos * static_cast<double>(args.inv_freq[i]);
      cos_t[i] = static_cast<float>(std::cos(angle));
      sin_t[i] = static_cast<float>(std::sin(angle));
    }
    // 2) Rotate each pair of each head; dims [rot_dim, head_dim) are left as they are.
    for (int h = 0; h < args.n_heads; ++h) {
      float* x = args.x + (t * args.n_heads + h) * args.head_dim;
      for (int i = 0; i < half; ++i) {
        float* a = x + i * first_stride;
        float* b = a + second_offset;
        const float x0 = *a;
        const float x1 = *b;
        *a = x0 * cos_t[i] - x1 * sin_t[i];
        *b = x0 * sin_t[i] + x1 * cos_t[i];
      }
    }
  }
}

}  // namespace ref
}  // namespace troupe
