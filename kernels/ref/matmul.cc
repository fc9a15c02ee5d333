// Reference matmul and row dequantization: plain loops, double accumulation. The oracle that
// cpu::Matmul is tested against. Stateless; safe from any thread.
#include "kernels/matmul.h"

#include <vector>

#include "common/check.h"

namespace troupe {

namespace {
// Elements per block of `type` (1 for the float types).
int BlockElems(GgmlType type) {
  const auto traits = TraitsOf(static_cast<uint32_t>(type));
  TROUPE_CHECK_MSG(traits.has_value(), "unsupported GgmlType %u", static_cast<unsigned>(type));
  return traits->block_elems;
}

// x[0, 32) of one Q4 block: low nibbles are elements 0..15, high nibbles 16..31.
void UnpackNibbles(const uint8_t* qs, int q[kQK]) {
  for (int i = 0; i < kQK / 2; ++i) {
    q[i] = qs[i] & 0x0f;
    q[i + kQK / 2] = qs[i] >> 4;
  }
}
}  // namespace

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  TROUPE_CHECK(n % BlockElems(type) == 0);
  int q[kQK];
  switch (type) {
    case GgmlType::kF32: {
      const float* s = static_cast<const float*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
      return;
    }
    case GgmlType::kF16: {
      const Fp16* s = static_cast<const Fp16*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(s[i]);
      return;
    }
    case GgmlType::kBF16: {
      const Bf16* s = static_cast<const Bf16*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFp32(s[i]);
      return;
    }
    case GgmlType::kQ8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = Fp16ToFp32(b[k].d);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * b[k].qs[i];
      }
      return;
    }
    case GgmlType::kQ4_0: {
      const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = Fp16ToFp32(b[k].d);
        UnpackNibbles(b[k].qs, q);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * static_cast<float>(q[i] - 8);
      }
      return;
    }
    case GgmlType::kQ4_1: {
      const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = Fp16ToFp32(b[k].d);
        const float m = Fp16ToFp32(b[k].m);
        UnpackNibbles(b[k].qs, q);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * static_cast<float>(q[i]) + m;
      }
      return;
    }
  }
  TROUPE_CHECK_MSG(false, "unsupported GgmlType %u", static_cast<unsigned>(type));
}

namespace ref {

void Matmul(const MatmulArgs& args) {
  const MatrixView& w = args.w;
  TROUPE_CHECK(w.rows >= 0 && w.cols >= 0 && args.n_tokens >= 0);
  TROUPE_CHECK(w.cols % BlockElems(w.type) == 0);
  const auto traits = TraitsOf(static_cast<uint32_t>(w.type));
  const size_t row_bytes = RowBytes(*traits, w.cols);
  std::vector<float> row(w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    // 1) Dequantize weight row r once.
    DequantizeRow(w.type, static_cast<const uint8_t*>(w.data) + r * row_bytes, row.data(), w.cols);
    // 2) Dot it with every token's activations, accumulating in double.
    for (int64_t t = 0; t < args.n_tokens; ++t) {
      const float* x = args.x + t * w.cols;
      double sum = 0.0;
      for (int64_t k = 0; k < w.cols; ++k) sum += static_cast<double>(row[k]) * x[k];
      args.y[t * w.rows + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace ref
}  // namespace troupe
