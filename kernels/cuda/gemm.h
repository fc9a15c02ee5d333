// bf16 GEMMs through cuBLAS for the CUDA backend: y[n, rows] = x[n, cols] . W[rows, cols]^T with
// bf16 inputs, f32 accumulation and f32 output (the residual stream and the attention inputs
// stay f32 until the next kernel rounds them).
//
// Not thread-safe: one Gemm per stream owner (the engine thread). The workspace is fixed at
// construction, so calls are safe inside CUDA graph capture.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/ggml_types.h"
#include "kernels/cuda/stream.h"

struct cublasContext;

namespace troupe::cuda {

class Gemm {
 public:
  [[nodiscard]] static absl::StatusOr<Gemm> Create(Stream stream);
  Gemm(Gemm&& other) noexcept;
  Gemm& operator=(Gemm&&) = delete;
  Gemm(const Gemm&) = delete;
  ~Gemm();

  // y = x . W^T. Device pointers. REQUIRES: n > 0; rows, cols > 0.
  void Run(const Bf16* w, int rows, int cols, const Bf16* x, int n, float* y);

 private:
  Gemm(cublasContext* handle, void* workspace) : handle_(handle), workspace_(workspace) {}
  cublasContext* handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace troupe::cuda
