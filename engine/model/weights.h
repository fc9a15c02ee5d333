// Llama weights as views into a GgufFile's mapping: matrices are used in place (no copy, no
// dequantization); only the small norm vectors are converted to float. Built once at load time,
// then read-only (safe to share across threads).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "kernels/matmul.h"

namespace troupe {

class GgufFile;

// One transformer block. Matrix shapes are [rows = output features, cols = input features];
// q_dim = num_heads * head_dim, kv_dim = num_kv_heads * head_dim.
struct LayerWeights {
  MatrixView wq;      // [q_dim, dim]       blk.N.attn_q.weight (Q rows permuted for pair RoPE)
  MatrixView wk;      // [kv_dim, dim]      blk.N.attn_k.weight (likewise)
  MatrixView wv;      // [kv_dim, dim]      blk.N.attn_v.weight
  MatrixView wo;      // [dim, q_dim]       blk.N.attn_output.weight
  MatrixView w_gate;  // [ffn_dim, dim]     blk.N.ffn_gate.weight
  MatrixView w_up;    // [ffn_dim, dim]     blk.N.ffn_up.weight
  MatrixView w_down;  // [dim, ffn_dim]     blk.N.ffn_down.weight
  std::vector<float> attn_norm;  // [dim]  blk.N.attn_norm.weight
  std::vector<float> ffn_norm;   // [dim]  blk.N.ffn_norm.weight
  // q/k/v biases when ModelConfig::qkv_bias (Qwen2), else empty.
  std::vector<float> bq;  // [q_dim]
  std::vector<float> bk;  // [kv_dim]
  std::vector<float> bv;  // [kv_dim]
};

struct ModelWeights {
  MatrixView token_embd;             // [vocab_size, dim]  token_embd.weight; row t embeds token t
  MatrixView output;                 // [vocab_size, dim]  output.weight, or token_embd when tied
  std::vector<float> output_norm;    // [dim]  output_norm.weight
  std::vector<LayerWeights> layers;  // [num_layers]
};

// Builds views of every Llama tensor in `file` and checks them against `config`: shape (rows =
// dims[1], cols = dims[0]; norms 1-D [dim]), matrix type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q2_K .. Q6_K), norm type F32/F16/BF16, and element alignment of the
// data. Absent output.weight means tied embeddings (output = token_embd). Returns kInvalidArgument naming the file, the tensor and, for shape
// errors, the expected and actual dims; a missing tensor is named the same way.
// The returned views point into `file`'s mapping: `file` must outlive them.
// REQUIRES: config came from ModelConfigFromGguf(file) (or matches it).
[[nodiscard]] absl::StatusOr<ModelWeights> LoadModelWeights(const GgufFile& file,
                                                            const ModelConfig& config);

}  // namespace troupe
