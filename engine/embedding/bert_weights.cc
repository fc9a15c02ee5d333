// Loading BertModel tensors from safetensors into BertWeights.
#include "engine/embedding/bert_weights.h"

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace troupe {
namespace {

// Reads `prefix + name` with the given shape.
class TensorReader {
 public:
  TensorReader(const SafetensorsFile& file, std::string prefix)
      : file_(file), prefix_(std::move(prefix)) {}

  absl::StatusOr<std::vector<float>> Read(const std::string& name,
                                          std::initializer_list<int64_t> shape) const {
    return file_.ReadFloat(prefix_ + name, std::span<const int64_t>(shape.begin(), shape.size()));
  }

 private:
  const SafetensorsFile& file_;
  const std::string prefix_;
};

absl::StatusOr<BertLayerWeights> ReadLayer(const TensorReader& reader, const BertConfig& c,
                                           int index) {
  const std::string p = absl::StrCat("encoder.layer.", index, ".");
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  BertLayerWeights w;
  w.qkv_w.reserve(static_cast<size_t>(3 * h * h));
  w.qkv_b.reserve(static_cast<size_t>(3 * h));
  for (const char* part : {"query", "key", "value"}) {
    const std::string base = absl::StrCat(p, "attention.self.", part);
    TROUPE_ASSIGN_OR_RETURN(const std::vector<float> wt, reader.Read(base + ".weight", {h, h}));
    TROUPE_ASSIGN_OR_RETURN(const std::vector<float> b, reader.Read(base + ".bias", {h}));
    w.qkv_w.insert(w.qkv_w.end(), wt.begin(), wt.end());
    w.qkv_b.insert(w.qkv_b.end(), b.begin(), b.end());
  }
  TROUPE_ASSIGN_OR_RETURN(w.attn_out_w, reader.Read(p + "attention.output.dense.weight", {h, h}));
  TROUPE_ASSIGN_OR_RETURN(w.attn_out_b, reader.Read(p + "attention.output.dense.bias", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.attn_ln_g, reader.Read(p + "attention.output.LayerNorm.weight", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.attn_ln_b, reader.Read(p + "attention.output.LayerNorm.bias", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_in_w, reader.Read(p + "intermediate.dense.weight", {f, h}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_in_b, reader.Read(p + "intermediate.dense.bias", {f}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_out_w, reader.Read(p + "output.dense.weight", {h, f}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_out_b, reader.Read(p + "output.dense.bias", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_ln_g, reader.Read(p + "output.LayerNorm.weight", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.ffn_ln_b, reader.Read(p + "output.LayerNorm.bias", {h}));
  return w;
}

}  // namespace

absl::StatusOr<BertWeights> LoadBertWeights(const SafetensorsFile& file, const BertConfig& c) {
  // Checkpoints saved from BertForX carry a "bert." prefix; BertModel ones (ours) do not.
  const bool prefixed = file.Find("embeddings.word_embeddings.weight") == nullptr &&
                        file.Find("bert.embeddings.word_embeddings.weight") != nullptr;
  const TensorReader reader(file, prefixed ? "bert." : "");
  const int64_t h = c.hidden_size;
  BertWeights w;
  TROUPE_ASSIGN_OR_RETURN(w.word_embeddings,
                          reader.Read("embeddings.word_embeddings.weight", {c.vocab_size, h}));
  TROUPE_ASSIGN_OR_RETURN(
      w.position_embeddings,
      reader.Read("embeddings.position_embeddings.weight", {c.max_position_embeddings, h}));
  TROUPE_ASSIGN_OR_RETURN(
      std::vector<float> types,
      reader.Read("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}));
  types.resize(static_cast<size_t>(h));
  w.token_type0 = std::move(types);
  TROUPE_ASSIGN_OR_RETURN(w.emb_ln_g, reader.Read("embeddings.LayerNorm.weight", {h}));
  TROUPE_ASSIGN_OR_RETURN(w.emb_ln_b, reader.Read("embeddings.LayerNorm.bias", {h}));
  w.layers.reserve(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    TROUPE_ASSIGN_OR_RETURN(BertLayerWeights layer, ReadLayer(reader, c, i));
    w.layers.push_back(std::move(layer));
  }
  return w;
}

}  // namespace troupe
