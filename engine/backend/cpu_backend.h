// The CPU backend: the model's layer plan (engine/model/layer_plan.h) on the reference kernels
// and the packed quantized matmuls, parallel over a thread pool, with the paged KV cache in host
// memory (f16 or f32).
// Not thread-safe; engine thread only (its pool's workers run only inside Forward).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "common/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/model/layer_plan.h"
#include "kernels/cpu/packed_matrix.h"

namespace troupe {

class CpuBackend final : public Backend {
 public:
  // Packs the weights (releasing the file pages of any tensor that was repacked) and allocates
  // the KV cache. `file` must outlive the backend (weights may be used in place); nullptr = the
  // weights are not from a file (nothing to release; their owner must outlive the backend).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(
      const BackendOptions& options, const ModelConfig& config, const ModelWeights& weights,
      const GgufFile* file);

  std::string_view name() const override { return "cpu"; }
  void Forward(const ForwardBatch& batch, float* logits) override;
  int64_t owned_weight_bytes() const override { return owned_weight_bytes_; }
  // The host tier is one more host allocation; copies are plain memcpy, done before returning.
  // It saves nothing a larger --kv-cache-mb would not, but it runs the tier's logic end to end
  // without a GPU (tests, the multi-turn bench).
  absl::Status AllocateHostKv(int64_t num_slots) override;
  void CopyKvBlocks(std::span<const KvBlockCopy> copies) override;

 private:
  struct Layer {
    // Q, K and V stacked into one matrix ([q_dim + 2 * kv_dim, dim]) when their type is
    // repacked anyway, and gate/up likewise ([2 * ffn_dim, dim]): one parallel region and one
    // activation quantization instead of three or two. Otherwise fused_* are empty.
    cpu::PackedMatrix wqkv, w_gate_up;
    cpu::PackedMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
    std::vector<float> attn_norm, ffn_norm;  // [dim]
    std::vector<float> bq, bk, bv;           // q/k/v biases (Qwen2), else empty
    std::unique_ptr<std::byte[]> k_cache, v_cache;  // [num_blocks, block_size, kv_dim] each
  };

  // The plan's ops over one Forward call's batch (cpu_backend.cc). The plan's activations live
  // in the scratch below: residual = x_, normed and delta = xb_ (each norm adds and normalises
  // in place), q/k/v = q_/k_/v_ (or fused_ first, when Q, K and V are stacked), attn = att_,
  // gate/up = gate_/up_ (or fused_ rows [gate | up] when stacked), act = gate_, and the logit
  // rows gathered into q_ with hidden in xb_.
  class StepOps;

  CpuBackend(const ModelConfig& config, int num_threads, KvCacheSpec kv, LayerPlan plan);
  void EnsureScratch(int64_t n_tokens);
  void RmsNormRows(const float* x, const std::vector<float>& weight, float* out, int64_t n);
  // x_ += delta (unless nullptr), out = RMSNorm(x_) * weight, over n rows.
  void AddRmsNormRows(const float* delta, const std::vector<float>& weight, float* out, int64_t n);

  // ---- constant after construction ----
  const ModelConfig config_;
  const KvCacheSpec kv_;
  const LayerPlan plan_;
  ThreadPool pool_;
  MatrixView token_embd_;                 // used in place from the mapping
  cpu::PackedMatrix output_;
  std::vector<float> output_norm_;
  std::vector<Layer> layers_;
  std::vector<float> rope_inv_freq_;      // [rot_dim / 2]
  int64_t owned_weight_bytes_ = 0;

  // ---- the host KV tier (AllocateHostKv) ----
  std::unique_ptr<std::byte[]> host_kv_;  // [num_slots][num_layers][K, V][block_size, kv_dim]
  int64_t host_kv_slots_ = 0;

  // ---- scratch, grown to the largest batch seen ----
  int64_t scratch_tokens_ = 0;
  std::vector<float> x_, xb_, q_, k_, v_, att_, gate_, up_;
  std::vector<float> fused_;  // [n, max(q_dim + 2 * kv_dim, 2 * ffn_dim)] fused matmul output
};

}  // namespace troupe
