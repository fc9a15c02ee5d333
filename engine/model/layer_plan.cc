// BuildLayerPlan: one step list per architecture; RunLayerPlan: the dispatch onto LayerOps.
#include "engine/model/layer_plan.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace troupe {
namespace {

// Llama: pre-norm blocks (RMSNorm), Q/K/V projections without biases, rotary embeddings on Q
// and K, full causal attention, SwiGLU feed-forward, final RMSNorm and LM head (tied or not).
LayerPlan LlamaPlan(const ModelConfig& config) {
  LayerPlan plan;
  plan.steps.reserve(1 + 9 * static_cast<size_t>(config.num_layers) + 2);
  plan.steps.push_back({.op = StepOp::kEmbed});
  for (int l = 0; l < config.num_layers; ++l) {
    plan.steps.push_back({.op = StepOp::kAttentionNorm, .layer = l, .add_delta = l > 0});
    plan.steps.push_back({.op = StepOp::kQkvProjection, .layer = l});
    plan.steps.push_back({.op = StepOp::kRopeKvWrite, .layer = l});
    plan.steps.push_back({.op = StepOp::kAttention, .layer = l});
    plan.steps.push_back({.op = StepOp::kOutputProjection, .layer = l});
    plan.steps.push_back({.op = StepOp::kFeedForwardNorm, .layer = l, .add_delta = true});
    plan.steps.push_back({.op = StepOp::kGateUpProjection, .layer = l});
    plan.steps.push_back({.op = StepOp::kSiluMul, .layer = l});
    plan.steps.push_back({.op = StepOp::kDownProjection, .layer = l});
  }
  plan.steps.push_back(
      {.op = StepOp::kOutputNorm, .add_delta = config.num_layers > 0, .logit_rows_only = true});
  plan.steps.push_back({.op = StepOp::kLmHead, .logit_rows_only = true});
  return plan;
}

}  // namespace

std::string_view StepOpName(StepOp op) {
  switch (op) {
    case StepOp::kEmbed: return "embed";
    case StepOp::kAttentionNorm: return "attention_norm";
    case StepOp::kQkvProjection: return "qkv_projection";
    case StepOp::kRopeKvWrite: return "rope_kv_write";
    case StepOp::kAttention: return "attention";
    case StepOp::kOutputProjection: return "output_projection";
    case StepOp::kFeedForwardNorm: return "feed_forward_norm";
    case StepOp::kGateUpProjection: return "gate_up_projection";
    case StepOp::kSiluMul: return "silu_mul";
    case StepOp::kDownProjection: return "down_projection";
    case StepOp::kOutputNorm: return "output_norm";
    case StepOp::kLmHead: return "lm_head";
  }
  return "unknown";
}

absl::StatusOr<LayerPlan> BuildLayerPlan(const ModelConfig& config) {
  // Mistral and Qwen2 are Llama's decoder (Qwen2's q/k/v biases are part of kQkvProjection).
  if (config.architecture.empty() || config.architecture == "llama" ||
      config.architecture == "mistral" || config.architecture == "qwen2") {
    return LlamaPlan(config);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no layer plan for architecture '", config.architecture, "'"));
}

void RunLayerPlan(const LayerPlan& plan, bool has_logit_rows, LayerOps& ops) {
  for (const PlanStep& step : plan.steps) {
    if (step.logit_rows_only && !has_logit_rows) continue;
    switch (step.op) {
      case StepOp::kEmbed: ops.Embed(step); break;
      case StepOp::kAttentionNorm: ops.AttentionNorm(step); break;
      case StepOp::kQkvProjection: ops.QkvProjection(step); break;
      case StepOp::kRopeKvWrite: ops.RopeKvWrite(step); break;
      case StepOp::kAttention: ops.Attention(step); break;
      case StepOp::kOutputProjection: ops.OutputProjection(step); break;
      case StepOp::kFeedForwardNorm: ops.FeedForwardNorm(step); break;
      case StepOp::kGateUpProjection: ops.GateUpProjection(step); break;
      case StepOp::kSiluMul: ops.SiluMul(step); break;
      case StepOp::kDownProjection: ops.DownProjection(step); break;
      case StepOp::kOutputNorm: ops.OutputNorm(step); break;
      case StepOp::kLmHead: ops.LmHead(step); break;
    }
  }
}

}  // namespace troupe
