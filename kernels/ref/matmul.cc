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

// Q5_0 / Q5_1: the nibbles as in Q4, plus bit e of the little-endian qh as bit 4 of element e.
void UnpackFiveBits(const uint8_t* qs, const uint8_t* qh_bytes, int q[kQK]) {
  UnpackNibbles(qs, q);
  const uint32_t qh = static_cast<uint32_t>(qh_bytes[0]) | static_cast<uint32_t>(qh_bytes[1]) << 8 |
                      static_cast<uint32_t>(qh_bytes[2]) << 16 |
                      static_cast<uint32_t>(qh_bytes[3]) << 24;
  for (int e = 0; e < kQK; ++e) q[e] |= static_cast<int>((qh >> e) & 1) << 4;
}

// One Q4_K / Q5_K super-block into dst[256]; qh is null for Q4_K. Sub-block j = 2g + k
// (k = 0: low nibbles, 1: high nibbles of the group's 32 qs bytes): (d * sc) * q - dmin * m,
// evaluated as ggml does so results are bit-identical.
void DequantizeKBlock(Fp16 d_bits, Fp16 dmin_bits, const uint8_t* scales, const uint8_t* qs,
                      const uint8_t* qh, float* dst) {
  const float d = Fp16ToFp32(d_bits);
  const float dmin = Fp16ToFp32(dmin_bits);
  for (int j = 0; j < kQKK / kQK; ++j) {
    const int g = j / 2, k = j % 2;
    int sc = 0, m = 0;
    UnpackScaleMinK(scales, j, &sc, &m);
    const float scale = d * static_cast<float>(sc);
    const float min = dmin * static_cast<float>(m);
    for (int l = 0; l < kQK; ++l) {
      const uint8_t byte = qs[32 * g + l];
      int q = k == 0 ? (byte & 0x0f) : (byte >> 4);
      if (qh != nullptr) q |= ((qh[l] >> j) & 1) << 4;  // bit 2g + k of qh[l]
      dst[kQK * j + l] = scale * static_cast<float>(q) - min;
    }
  }
}

// One Q2_K super-block into dst[256] (layout in ggml_types.h).
void DequantizeQ2KBlock(const BlockQ2_K& b, float* dst) {
  const float d = Fp16ToFp32(b.d);
  const float dmin = Fp16ToFp32(b.dmin);
  for (int e = 0; e < kQKK; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
    const uint8_t sc = b.scales[e / 16];
    const float scale = d * static_cast<float>(sc & 0x0f);
    const float min = dmin * static_cast<float>(sc >> 4);
    dst[e] = scale * static_cast<float>(q) - min;
  }
}

// One Q3_K super-block into dst[256] (layout in ggml_types.h).
void DequantizeQ3KBlock(const BlockQ3_K& b, float* dst) {
  const float d = Fp16ToFp32(b.d);
  for (int e = 0; e < kQKK; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int low = (b.qs[32 * h + l] >> (2 * j)) & 3;
    const int q = low - ((b.hmask[l] >> (4 * h + j)) & 1 ? 0 : 4);
    const float scale = d * static_cast<float>(Q3KScale(b.scales, e / 16) - 32);
    dst[e] = scale * static_cast<float>(q);
  }
}

// One Q6_K super-block into dst[256] (layout in ggml_types.h).
void DequantizeQ6KBlock(const BlockQ6_K& b, float* dst) {
  const float d = Fp16ToFp32(b.d);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int q[4] = {(ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4,
                        (ql[32 + l] & 0x0f) | ((qh[l] >> 2) & 3) << 4,
                        (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4,
                        (ql[32 + l] >> 4) | ((qh[l] >> 6) & 3) << 4};
      for (int k = 0; k < 4; ++k) {
        const int e = 128 * h + 32 * k + l;
        dst[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q[k] - 32);
      }
    }
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
    case GgmlType::kQ5_0: {
      const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = Fp16ToFp32(b[k].d);
        UnpackFiveBits(b[k].qs, b[k].qh, q);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * static_cast<float>(q[i] - 16);
      }
      return;
    }
    case GgmlType::kQ5_1: {
      const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = Fp16ToFp32(b[k].d);
        const float m = Fp16ToFp32(b[k].m);
        UnpackFiveBits(b[k].qs, b[k].qh, q);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * static_cast<float>(q[i]) + m;
      }
      return;
    }
    case GgmlType::kQ2_K: {
      const BlockQ2_K* b = static_cast<const BlockQ2_K*>(src);
      for (int64_t k = 0; k < n / kQKK; ++k) DequantizeQ2KBlock(b[k], dst + k * kQKK);
      return;
    }
    case GgmlType::kQ3_K: {
      const BlockQ3_K* b = static_cast<const BlockQ3_K*>(src);
      for (int64_t k = 0; k < n / kQKK; ++k) DequantizeQ3KBlock(b[k], dst + k * kQKK);
      return;
    }
    case GgmlType::kQ4_K: {
      const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
      for (int64_t k = 0; k < n / kQKK; ++k) {
        DequantizeKBlock(b[k].d, b[k].dmin, b[k].scales, b[k].qs, nullptr, dst + k * kQKK);
      }
      return;
    }
    case GgmlType::kQ5_K: {
      const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
      for (int64_t k = 0; k < n / kQKK; ++k) {
        DequantizeKBlock(b[k].d, b[k].dmin, b[k].scales, b[k].qs, b[k].qh, dst + k * kQKK);
      }
      return;
    }
    case GgmlType::kQ6_K: {
      const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
      for (int64_t k = 0; k < n / kQKK; ++k) DequantizeQ6KBlock(b[k], dst + k * kQKK);
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
