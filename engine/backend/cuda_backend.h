// The CUDA backend: the Llama forward pass on one GPU, with bf16 weights (GGUF blocks
// dequantized at load), an f32 residual stream, a bf16 paged KV cache in device memory and the
// custom kernels of kernels/cuda/ around cuBLAS GEMMs. It reads the same block tables as the CPU
// backend, so the scheduler and prefix cache are shared unchanged.
//
// A step: upload the batch's metadata (one copy from pinned memory), then the model's layer
// plan (engine/model/layer_plan.h) as kernels: embed, per layer AddRmsNorm -> QKV GEMM -> RoPE +
// KV write -> decode and/or prefill attention -> O GEMM -> AddRmsNorm -> gate/up GEMM -> SiLU x
// up -> down GEMM for Llama; final norm of the sampled rows, LM head, sampling or logits back to
// the host. docs/kernels.md has the kernel designs.
//
// Not thread-safe; engine thread only (it owns the CUDA streams).
#pragma once

#include <cstdint>
#include <memory>

#include "engine/backend/backend.h"

namespace troupe {

class CudaBackend final : public Backend {
 public:
  // Uploads the weights and allocates the KV cache on device 0. kUnavailable when no CUDA device
  // answers; kInvalidArgument for a shape the kernels do not cover (head_dim, GQA group);
  // kResourceExhausted when the weights and KV cache do not fit.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(
      const BackendOptions& options, const ModelConfig& config, const ModelWeights& weights);
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  void Forward(const ForwardBatch& batch, float* logits) override;
  bool samples_on_device() const override { return true; }
  int64_t owned_weight_bytes() const override;
  // The host tier in page-locked memory (cudaHostAlloc); copies run on a stream of their own,
  // one cudaMemcpy2DAsync per block (every layer's K and V of a block lie at one pitch).
  // kInvalidArgument when that pitch (a layer's K array) exceeds the device's maximum pitch.
  absl::Status AllocateHostKv(int64_t num_slots) override;
  void CopyKvBlocks(std::span<const KvBlockCopy> copies) override;

  struct State;  // device buffers, stream, cuBLAS (cuda_backend.cc)

 private:
  explicit CudaBackend(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// True when a CUDA device answers (any CUDA error means no device).
bool CudaDeviceAvailable();

}  // namespace troupe
