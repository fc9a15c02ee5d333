// Fast CPU matmul over quantized weights. A PackedMatrix is built once at load time from a GGUF
// tensor (repacked into a SIMD-friendly layout, or borrowed in place when the layout is
// already fine); Matmul then runs on the quantized blocks, never on a dequantized f32 copy.
// Thread-safety: a PackedMatrix is immutable after Pack() and safe to read from any thread;
// Matmul may run from one thread at a time per ThreadPool (the engine thread).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "common/thread_pool.h"
#include "kernels/matmul.h"

namespace troupe::cpu {

// Q4_0, Q4_1, Q8_0, Q5_0 and Q5_1 are repacked into tiles of 16 rows whose size equals the
// source's; the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) into the same tiles of 32-element blocks with
// f32 scales (larger than the source: kernels/cpu/packed_layout.h; docs/kernels.md "CPU
// matmul"); F32, F16 and BF16 are borrowed.
class PackedMatrix {
 public:
  // Packs `w`. If the returned matrix borrows w.data, `w.data` must outlive it
  // (borrows_source() tells). After a repack the source pages may be released by the caller.
  // REQUIRES: w.type is supported (TraitsOf), w.cols % block size == 0, w.data is valid for
  // rows * RowBytes(cols).
  static PackedMatrix Pack(const MatrixView& w);

  PackedMatrix() = default;
  PackedMatrix(PackedMatrix&&) = default;
  PackedMatrix& operator=(PackedMatrix&&) = default;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  GgmlType type() const { return type_; }
  bool borrows_source() const { return borrowed_ != nullptr; }
  size_t owned_bytes() const { return storage_bytes_; }

  // The weights in the kernels' layout: the borrowed GGUF rows, or the repacked tiles (64-byte
  // aligned). For the kernels in kernels/cpu/ only.
  const uint8_t* data() const {
    return borrowed_ != nullptr ? static_cast<const uint8_t*>(borrowed_) : storage_.get();
  }

  // Dequantizes row `row` into out[cols()] (bit-identical to DequantizeRow on the source row),
  // so a tied embedding can be looked up from the packed output matrix.
  // REQUIRES: 0 <= row < rows().
  void GetRow(int64_t row, float* out) const;

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  GgmlType type_ = GgmlType::kF32;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  const void* borrowed_ = nullptr;                 // source data used in place, or null
  std::unique_ptr<uint8_t, FreeDeleter> storage_;  // repacked tiles when not borrowed
  size_t storage_bytes_ = 0;
};

// y[n_tokens, rows] = x[n_tokens, cols] * W^T, parallel over the pool. x is read-only; y must
// not alias x. Quantized weights: x is quantized to int8 per 32-element block (as llama.cpp's
// Q8 activations), so results agree with ref::Matmul within that rounding: per output,
// |y - ref| <= sum_k |w_k| * amax(x's block of k) / 254 (plus f32 rounding). Float weights:
// f32 accumulation. Uses a per-thread scratch buffer that grows to the largest n_tokens * cols.
void Matmul(const PackedMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace troupe::cpu
