// Matrix multiply of activations by a (possibly quantized) weight matrix: y = x * W^T.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

namespace troupe {

// A weight matrix as stored in GGUF: `rows` rows (output features), each `cols` elements
// (input features) of `type`, rows contiguous. REQUIRES: cols % block size == 0.
struct MatrixView {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;  // [rows, cols] in `type` blocks
  int64_t rows = 0;
  int64_t cols = 0;
};

struct MatmulArgs {
  MatrixView w;
  const float* x = nullptr;  // [n_tokens, w.cols]
  float* y = nullptr;        // [n_tokens, w.rows]; must not alias x
  int64_t n_tokens = 0;
};

namespace ref {
// Plain loops: dequantizes each weight row and accumulates in double. The oracle for cpu::.
void Matmul(const MatmulArgs& args);
}  // namespace ref

// Dequantizes `n` elements of one row of `type` starting at `src` into dst[n].
// REQUIRES: n % block size == 0.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace troupe
