// The decoder's layer sequence written once (the "layer plan"): BuildLayerPlan turns a
// ModelConfig into an ordered list of steps, and RunLayerPlan calls each backend's LayerOps for
// them in that order, so the CPU and CUDA backends run the same sequence with their own kernels.
// Plain value type; built once when a backend is created, then read-only.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"

namespace troupe {

enum class StepOp {
  kEmbed,             // residual = token_embd[tokens]
  kAttentionNorm,     // residual += delta (add_delta); normed = RMSNorm(residual) * attn_norm
  kQkvProjection,     // q, k, v = normed * [wq; wk; wv]^T (+ [bq; bk; bv] when qkv_bias)
  kRopeKvWrite,       // RoPE on q and k; k and v written to the layer's paged cache
  kAttention,         // attn = paged causal attention of q over the cached k, v
  kOutputProjection,  // delta = attn * wo^T
  kFeedForwardNorm,   // residual += delta (add_delta); normed = RMSNorm(residual) * ffn_norm
  kGateUpProjection,  // gate, up = normed * [w_gate; w_up]^T
  kSiluMul,           // act = SiLU(gate) * up
  kDownProjection,    // delta = act * w_down^T
  kOutputNorm,        // logit rows only: residual += delta (add_delta); hidden = RMSNorm * output_norm
  kLmHead,            // logit rows only: logits = hidden * output^T
};

struct PlanStep {
  StepOp op = StepOp::kEmbed;
  int layer = -1;                // decoder layer; -1 outside the layers
  bool add_delta = false;        // norms: add the last block's output into the residual first
  bool logit_rows_only = false;  // the step runs only when the batch has logit rows
};

struct LayerPlan {
  std::vector<PlanStep> steps;  // in execution order
};

// "llama" (or "", a hand-built config): the Llama sequence. kInvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<LayerPlan> BuildLayerPlan(const ModelConfig& config);

std::string_view StepOpName(StepOp op);

// One backend's implementation of each step. Not thread-safe; engine thread only.
class LayerOps {
 public:
  virtual ~LayerOps() = default;
  virtual void Embed(const PlanStep& step) = 0;
  virtual void AttentionNorm(const PlanStep& step) = 0;
  virtual void QkvProjection(const PlanStep& step) = 0;
  virtual void RopeKvWrite(const PlanStep& step) = 0;
  virtual void Attention(const PlanStep& step) = 0;
  virtual void OutputProjection(const PlanStep& step) = 0;
  virtual void FeedForwardNorm(const PlanStep& step) = 0;
  virtual void GateUpProjection(const PlanStep& step) = 0;
  virtual void SiluMul(const PlanStep& step) = 0;
  virtual void DownProjection(const PlanStep& step) = 0;
  virtual void OutputNorm(const PlanStep& step) = 0;
  virtual void LmHead(const PlanStep& step) = 0;
};

// Calls ops for every step of `plan` in order, skipping logit-row steps when the batch has no
// logit rows.
void RunLayerPlan(const LayerPlan& plan, bool has_logit_rows, LayerOps& ops);

}  // namespace troupe
