// PanelMatrix: packing and the register-tiled multiply.
#include "kernels/cpu/panel_matmul.h"

#include <algorithm>

#include "common/check.h"
#include "kernels/cpu/simd.h"

namespace troupe::cpu {
namespace {

constexpr int kPanel = PanelMatrix::kPanelRows;
constexpr int kMaxTileTokens = 6;  // 6 tokens x 2 vectors = 12 accumulators (+2 weight vectors)

// out[t][0..32) = bias_panel + sum_k x[t * cols + k] * panel[k][0..32) for t < T.
// out is [T, 32] contiguous; the caller copies the valid rows into y.
template <int T>
void Tile(const float* panel, const float* bias_panel, const float* x, int64_t cols, float* out) {
  Vec16 acc[T][2];
  const Vec16 b0 = Load16(bias_panel);
  const Vec16 b1 = Load16(bias_panel + 16);
  for (int t = 0; t < T; ++t) {
    acc[t][0] = b0;
    acc[t][1] = b1;
  }
  for (int64_t k = 0; k < cols; ++k) {
    const Vec16 w0 = Load16(panel + k * kPanel);
    const Vec16 w1 = Load16(panel + k * kPanel + 16);
    for (int t = 0; t < T; ++t) {
      const float xv = x[t * cols + k];
      acc[t][0] += xv * w0;
      acc[t][1] += xv * w1;
    }
  }
  for (int t = 0; t < T; ++t) {
    Store16(out + t * kPanel, acc[t][0]);
    Store16(out + t * kPanel + 16, acc[t][1]);
  }
}

void TileOf(int num_tokens, const float* panel, const float* bias_panel, const float* x,
            int64_t cols, float* out) {
  switch (num_tokens) {
    case 1:
      return Tile<1>(panel, bias_panel, x, cols, out);
    case 2:
      return Tile<2>(panel, bias_panel, x, cols, out);
    case 3:
      return Tile<3>(panel, bias_panel, x, cols, out);
    case 4:
      return Tile<4>(panel, bias_panel, x, cols, out);
    case 5:
      return Tile<5>(panel, bias_panel, x, cols, out);
    default:
      return Tile<kMaxTileTokens>(panel, bias_panel, x, cols, out);
  }
}

}  // namespace

PanelMatrix PanelMatrix::Pack(const float* w, int64_t rows, int64_t cols) {
  TROUPE_CHECK(rows >= 1 && cols >= 1);
  PanelMatrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  const int64_t num_panels = (rows + kPanel - 1) / kPanel;
  m.panels_.assign(static_cast<size_t>(num_panels * cols * kPanel), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = m.panels_.data() + (r / kPanel) * cols * kPanel + r % kPanel;
    const float* src = w + r * cols;
    for (int64_t k = 0; k < cols; ++k) dst[k * kPanel] = src[k];
  }
  return m;
}

// Loop order: panels outside, token tiles inside, so one panel (cols * 128 bytes: 48 KB for
// cols = 384) stays in L1/L2 while every token tile streams over it; the weights are read from
// memory once per call.
void PanelMatrix::Multiply(const float* x, int64_t n, const float* bias, float* y) const {
  float bias_panel[kPanel];
  float out[kMaxTileTokens * kPanel];
  for (int64_t r0 = 0; r0 < rows_; r0 += kPanel) {
    const int valid = static_cast<int>(std::min<int64_t>(kPanel, rows_ - r0));
    std::fill(bias_panel, bias_panel + kPanel, 0.0f);
    if (bias != nullptr) std::copy(bias + r0, bias + r0 + valid, bias_panel);
    const float* panel = panels_.data() + (r0 / kPanel) * cols_ * kPanel;
    for (int64_t t0 = 0; t0 < n; t0 += kMaxTileTokens) {
      const int num_tokens = static_cast<int>(std::min<int64_t>(kMaxTileTokens, n - t0));
      TileOf(num_tokens, panel, bias_panel, x + t0 * cols_, cols_, out);
      for (int t = 0; t < num_tokens; ++t) {
        std::copy(out + t * kPanel, out + t * kPanel + valid, y + (t0 + t) * rows_ + r0);
      }
    }
  }
}

}  // namespace troupe::cpu
