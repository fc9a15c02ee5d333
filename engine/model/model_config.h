// Llama-family model hyper-parameters, read from GGUF metadata (here) or a Hugging Face
// config.json (engine/model/hf_checkpoint.h). Plain value type; built once at load
// time, then read-only (safe to share across threads).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/rope.h"

namespace troupe {

class GgufFile;

struct ModelConfig {
  std::string architecture;      // "llama" (GGUF general.architecture), or an HF model_type:
                                 // "llama", "mistral", "qwen2" (one decoder, engine/model/layer_plan)
  std::string name;              // general.name, "" if absent
  int vocab_size = 0;            // rows of token_embd / output
  int dim = 0;                   // embedding_length (residual width)
  int num_layers = 0;            // block_count
  int num_heads = 0;             // query heads
  int num_kv_heads = 0;          // key/value heads (GQA: num_heads % num_kv_heads == 0)
  int head_dim = 0;              // attention.key_length, default dim / num_heads
  int ffn_dim = 0;               // feed_forward_length (SwiGLU hidden width)
  int context_length = 0;        // positions the model was trained for
  float rms_eps = 1e-5f;         // attention.layer_norm_rms_epsilon
  RopeConfig rope;               // neox = false: Llama GGUF stores Q/K permuted for pairwise RoPE
  bool tied_embeddings = false;  // no output.weight: the output projection is token_embd
  bool qkv_bias = false;         // q/k/v projections add a bias (Qwen2)
  int64_t num_parameters = 0;    // elements of all tensors in the file
};

// Reads the "llama" hyper-parameters from `file`'s metadata (and, for llama3 RoPE, its
// rope_freqs.weight tensor). Returns kInvalidArgument naming the file and the key for an
// unsupported architecture ("unsupported architecture gpt2"), a missing required key, a value of
// the wrong type or out of range, inconsistent head counts, or unsupported RoPE scaling.
[[nodiscard]] absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file);

// Attention work per (query, key) pair over the layers' matmul work per token, both in
// multiply-adds over all layers: 2 * heads * head_dim per pair (QK and PV) against the
// projection and FFN weights. The scheduler's step cost model (SchedulerOptions).
double AttentionPairCost(const ModelConfig& config);

}  // namespace troupe
