// In-process sentence embeddings with a BERT sentence-transformers model (all-MiniLM-L6-v2 by
// default: scripts/fetch-embedder.sh installs it in models/all-MiniLM-L6-v2). CPU, float32,
// no Python: WordPiece tokenization -> BERT encoder -> mean pooling -> L2 normalization, matching
// sentence-transformers (tests/engine/embedding/bert_embedder_test.cc checks it against a golden
// file). Used by memory retrieval on the worker pool; docs/embedding.md.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/embedding/bert_config.h"
#include "engine/embedding/bert_weights.h"
#include "engine/embedding/text_embedder.h"
#include "engine/embedding/wordpiece_tokenizer.h"
#include "kernels/cpu/panel_matmul.h"

namespace troupe {

// A loaded embedding model. Owns its weights (~90 MB of float32 for MiniLM-L6).
// Thread-safety: immutable after Load(); Embed, EmbedBatch and EmbedTokenIds are const, keep
// all scratch memory local to the call and run on the calling thread only, so any number of
// threads may call them concurrently (each call uses one core).
class BertEmbedder final : public TextEmbedder {
 public:
  // Loads config.json, the sentence-transformers files, vocab.txt and model.safetensors from
  // `model_dir`. Errors: kNotFound (config.json, vocab.txt or model.safetensors missing),
  // kInvalidArgument (unsupported config, bad vocabulary, corrupt or mismatched weights);
  // messages name the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BertEmbedder>> Load(
      const std::string& model_dir);

  BertEmbedder(const BertEmbedder&) = delete;
  BertEmbedder& operator=(const BertEmbedder&) = delete;

  // The embedding of `text`: dim() floats, unit L2 norm when config().normalize (always for
  // all-MiniLM-L6-v2). Text past config().max_seq_length tokens is ignored (truncated); an empty
  // text embeds [CLS] [SEP]. Invalid UTF-8 bytes are dropped. Currently never fails; the
  // StatusOr leaves room for backends that can.
  [[nodiscard]] absl::StatusOr<std::vector<float>> Embed(std::string_view text) const override;

  // Embed for each text, in order. Faster per text than separate calls for short texts (the
  // linear layers run once over the tokens of many texts). Results equal Embed's up to float
  // rounding.
  [[nodiscard]] absl::StatusOr<std::vector<std::vector<float>>> EmbedBatch(
      std::span<const std::string> texts) const;

  // The embedding of already tokenized input (with [CLS] ... [SEP] if wanted); for tests and
  // benchmarks. Errors: kInvalidArgument when `ids` is empty, longer than
  // config().max_position_embeddings, or holds an id outside [0, config().vocab_size).
  [[nodiscard]] absl::StatusOr<std::vector<float>> EmbedTokenIds(
      std::span<const int32_t> ids) const;

  int dim() const override { return config_.hidden_size; }
  const BertConfig& config() const { return config_; }
  const WordpieceTokenizer& tokenizer() const { return *tokenizer_; }

 private:
  // A linear layer y = x W^T + b.
  struct Linear {
    cpu::PanelMatrix w;             // packed copy; the BertWeights matrix is released
    const float* b = nullptr;  // [w.rows()] in weights_
  };
  struct LayerLinears {
    Linear qkv, attn_out, ffn_in, ffn_out;
  };

  BertEmbedder() = default;

  // Embeds each sequence of `batch`. REQUIRES: every sequence is non-empty, no longer than
  // max_position_embeddings, with ids in [0, vocab_size).
  std::vector<std::vector<float>> Forward(std::span<const std::vector<int32_t>> batch) const;

  // ---- Constant after Load() ----
  BertConfig config_;
  std::unique_ptr<WordpieceTokenizer> tokenizer_;
  BertWeights weights_;  // embeddings, biases and LayerNorms; layer matrices moved to linears_
  std::vector<LayerLinears> linears_;  // [num_layers]
};

}  // namespace troupe
