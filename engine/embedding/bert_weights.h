// BERT encoder weights converted to float32 and owned, loaded from a safetensors checkpoint
// (Hugging Face BertModel names, with or without a "bert." prefix). Built once at load time,
// then read-only: safe to share across threads.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/embedding/bert_config.h"
#include "engine/formats/safetensors.h"

namespace troupe {

// One encoder layer. Matrices are [rows = output features, cols = input features], row-major,
// as torch.nn.Linear stores them; H = hidden_size, F = intermediate_size.
struct BertLayerWeights {
  std::vector<float> qkv_w;       // [3H, H]  query, key, value weights stacked by rows
  std::vector<float> qkv_b;       // [3H]
  std::vector<float> attn_out_w;  // [H, H]   attention.output.dense
  std::vector<float> attn_out_b;  // [H]
  std::vector<float> attn_ln_g;   // [H]      attention.output.LayerNorm
  std::vector<float> attn_ln_b;   // [H]
  std::vector<float> ffn_in_w;    // [F, H]   intermediate.dense
  std::vector<float> ffn_in_b;    // [F]
  std::vector<float> ffn_out_w;   // [H, F]   output.dense
  std::vector<float> ffn_out_b;   // [H]
  std::vector<float> ffn_ln_g;    // [H]      output.LayerNorm
  std::vector<float> ffn_ln_b;    // [H]
};

struct BertWeights {
  std::vector<float> word_embeddings;      // [vocab_size, H]
  std::vector<float> position_embeddings;  // [max_position_embeddings, H]
  std::vector<float> token_type0;          // [H]  row 0 of token_type_embeddings (one segment)
  std::vector<float> emb_ln_g;             // [H]  embeddings.LayerNorm
  std::vector<float> emb_ln_b;             // [H]
  std::vector<BertLayerWeights> layers;    // [num_layers]
};

// Reads every tensor the encoder needs from `file` (F32, F16 or BF16), checking each shape
// against `config`. The pooler and any other extra tensors are ignored. Errors:
// kInvalidArgument naming the file and tensor (missing, wrong dtype, wrong shape).
[[nodiscard]] absl::StatusOr<BertWeights> LoadBertWeights(const SafetensorsFile& file,
                                                          const BertConfig& config);

}  // namespace troupe
