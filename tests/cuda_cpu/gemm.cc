// cuda_cpu's stand-in for kernels/cuda/gemm.cc (cuBLAS): the same y = x . W^T with bf16 inputs,
// f32 accumulation and f32 output, as a loop on the CPU, issued on the Gemm's stream so that
// graph capture records it like any launch. It checks the backend around the GEMMs, not cuBLAS:
// gemm_cuda_test covers that on a GPU.
#include <cuda_runtime.h>

#include <vector>

#include "common/check.h"
#include "kernels/cuda/gemm.h"
#include "tests/cuda_cpu/cuda_cpu.h"

struct cublasContext {
  cudaStream_t stream;
};

namespace troupe::cuda {
namespace {

void GemmOnCpu(const Bf16* w, int rows, int cols, const Bf16* x, int n, float* y) {
  std::vector<float> xf(static_cast<size_t>(n) * cols), wf(cols);
  for (size_t i = 0; i < xf.size(); ++i) xf[i] = Bf16ToFp32(x[i]);
  constexpr int kLanes = 16;
  for (int r = 0; r < rows; ++r) {
    const Bf16* wr = w + static_cast<size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) wf[c] = Bf16ToFp32(wr[c]);
    for (int i = 0; i < n; ++i) {
      const float* xi = xf.data() + static_cast<size_t>(i) * cols;
      float lanes[kLanes] = {};
      int c = 0;
      for (; c + kLanes <= cols; c += kLanes) {
        for (int l = 0; l < kLanes; ++l) lanes[l] += xi[c + l] * wf[c + l];
      }
      float sum = 0.0f;
      for (; c < cols; ++c) sum += xi[c] * wf[c];
      for (int l = 0; l < kLanes; ++l) sum += lanes[l];
      y[static_cast<size_t>(i) * rows + r] = sum;
    }
  }
}

}  // namespace

absl::StatusOr<Gemm> Gemm::Create(Stream stream) {
  return Gemm(new cublasContext{stream}, nullptr);
}

Gemm::Gemm(Gemm&& other) noexcept : handle_(other.handle_), workspace_(other.workspace_) {
  other.handle_ = nullptr;
  other.workspace_ = nullptr;
}

Gemm::~Gemm() { delete handle_; }

void Gemm::Run(const Bf16* w, int rows, int cols, const Bf16* x, int n, float* y) {
  TROUPE_CHECK(n > 0 && rows > 0 && cols > 0);
  const void* operands[] = {w, x, y};
  cuda_cpu::Enqueue(handle_->stream, cuda_cpu::AllocationsReferencedBy(operands, sizeof operands),
                    [=] { GemmOnCpu(w, rows, cols, x, n, y); });
}

}  // namespace troupe::cuda
