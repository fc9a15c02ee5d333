// Float32 matrix multiply for the embedding encoder (engine/embedding), y = x W^T + b, on the
// calling thread.
//
// W is repacked once at load time into panels of kPanelRows output rows stored k-major
// ([rows / 32][cols][32]); a register tile of up to 6 tokens x 32 outputs then reads each panel
// contiguously with one broadcast per token and k, and no horizontal sums. On this project's
// AVX-512 machines it runs at 80-105 GFLOP/s on one core for 30-256 tokens, ~1.5x
// cpu::Matmul's f32 path (4x4 dot-product tiles) on the MiniLM shapes, and needs no ThreadPool,
// so concurrent callers share nothing. docs/embedding.md has the measurements.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::cpu {

// A weight matrix in panel layout. Immutable after Pack(); Multiply is const and safe to call
// from any number of threads at once.
class PanelMatrix {
 public:
  static constexpr int kPanelRows = 32;

  // Packs w[rows, cols] (row-major, as torch.nn.Linear stores it); `w` is not kept.
  // REQUIRES: rows >= 1, cols >= 1.
  static PanelMatrix Pack(const float* w, int64_t rows, int64_t cols);

  PanelMatrix() = default;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

  // y[n, rows] = x[n, cols] W^T + bias (broadcast over tokens; null = no bias), accumulating in
  // float32 along k in order. REQUIRES: y does not alias x.
  void Multiply(const float* x, int64_t n, const float* bias, float* y) const;

 private:
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::vector<float> panels_;  // [ceil(rows / 32), cols, 32]; rows past `rows_` are zero
};

}  // namespace troupe::cpu
