// The shape and sentence-transformers pipeline of a BERT sentence-embedding model, read from a
// Hugging Face / sentence-transformers model folder at load time. A plain value type.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace troupe {

struct BertConfig {
  // ---- config.json (BertModel) ----
  int vocab_size = 0;
  int hidden_size = 0;  // dim of token states and of the sentence embedding
  int num_layers = 0;
  int num_heads = 0;          // head_dim = hidden_size / num_heads
  int intermediate_size = 0;  // FFN width
  int max_position_embeddings = 0;
  int type_vocab_size = 0;
  float layer_norm_eps = 1e-12f;
  // ---- sentence-transformers modules ----
  int max_seq_length = 0;  // tokens kept, [CLS] and [SEP] included (sentence_bert_config.json)
  bool normalize = false;  // modules.json lists a Normalize module: L2-normalize the mean

  int head_dim() const { return hidden_size / num_heads; }
};

// Reads <model_dir>/config.json and the optional sentence-transformers files beside it:
// sentence_bert_config.json (max_seq_length; default min(256, max_position_embeddings)),
// 1_Pooling/config.json (must select mean pooling alone), modules.json (Normalize present?) and
// tokenizer_config.json (must not set do_lower_case false). Supported: model_type "bert",
// hidden_act "gelu" (erf form), absolute position embeddings.
// Errors: kNotFound (no config.json), kInvalidArgument (unparsable JSON, a missing or
// out-of-range field, an unsupported setting); messages name the file and field.
[[nodiscard]] absl::StatusOr<BertConfig> LoadBertConfig(const std::string& model_dir);

}  // namespace troupe
