#include "kernels/cpu/panel_matmul.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace troupe::cpu {
namespace {

// Plain loops in double: the oracle.
std::vector<double> RefMultiply(const std::vector<float>& w, int64_t rows, int64_t cols,
                                const std::vector<float>& x, int64_t n, const float* bias) {
  std::vector<double> y(static_cast<size_t>(n * rows));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = bias != nullptr ? bias[r] : 0.0;
      for (int64_t k = 0; k < cols; ++k)
        acc += static_cast<double>(x[t * cols + k]) * w[r * cols + k];
      y[t * rows + r] = acc;
    }
  }
  return y;
}

TEST(PanelMatmulTest, MatchesReferenceOverRaggedShapes) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  struct Shape {
    int64_t rows, cols;
  };
  // Rows around the 32-row panel, columns odd and even, token counts around the 6-token tile.
  for (const Shape s :
       {Shape{1, 1}, Shape{31, 7}, Shape{32, 16}, Shape{33, 45}, Shape{96, 384}, Shape{70, 130}}) {
    for (const int64_t n : {1, 2, 5, 6, 7, 13, 30}) {
      std::vector<float> w(static_cast<size_t>(s.rows * s.cols));
      std::vector<float> x(static_cast<size_t>(n * s.cols));
      std::vector<float> bias(static_cast<size_t>(s.rows));
      for (float& v : w) v = normal(rng);
      for (float& v : x) v = normal(rng);
      for (float& v : bias) v = normal(rng);
      const PanelMatrix m = PanelMatrix::Pack(w.data(), s.rows, s.cols);
      EXPECT_EQ(m.rows(), s.rows);
      EXPECT_EQ(m.cols(), s.cols);
      for (const bool with_bias : {false, true}) {
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> y(static_cast<size_t>(n * s.rows), -7.0f);
        m.Multiply(x.data(), n, b, y.data());
        const std::vector<double> want = RefMultiply(w, s.rows, s.cols, x, n, b);
        // f32 accumulation over cols terms of size ~1: error ~ sqrt(cols) * 2^-24 * |terms|.
        const double tol = 1e-5 * std::sqrt(static_cast<double>(s.cols)) * 4;
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], want[i], tol) << s.rows << "x" << s.cols << " n=" << n << " i=" << i;
        }
      }
    }
  }
}

TEST(PanelMatmulTest, WritesOnlyTheOutputRows) {
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};  // [3, 2]
  const PanelMatrix m = PanelMatrix::Pack(w.data(), 3, 2);
  const std::vector<float> x = {1, 1, 0, 1};  // [2, 2]
  std::vector<float> y(7, -1.0f);             // [2, 3] + one guard
  m.Multiply(x.data(), 2, nullptr, y.data());
  EXPECT_EQ(y, (std::vector<float>{3, 7, 11, 2, 4, 6, -1}));
}

}  // namespace
}  // namespace troupe::cpu
