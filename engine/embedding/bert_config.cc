// BertConfig from config.json and the sentence-transformers files.
#include "engine/embedding/bert_config.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/formats/json_file.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

// JsonInt narrowed to int (every BERT field is bounded well inside int).
absl::StatusOr<int> JsonIntAsInt(const nlohmann::json& json, const std::string& path,
                                 const char* key, int min_value, int max_value) {
  TROUPE_ASSIGN_OR_RETURN(const int64_t v, JsonInt(json, path, key, min_value, max_value));
  return static_cast<int>(v);
}

absl::Status CheckPooling(const std::string& path, const nlohmann::json& pooling) {
  for (const auto& [key, value] : pooling.items()) {
    if (key.rfind("pooling_mode_", 0) != 0 || !value.is_boolean()) continue;
    const bool want = key == "pooling_mode_mean_tokens";
    if (value.get<bool>() != want) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": only mean pooling is supported, but ",
                                                     key, " = ", value.get<bool>()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BertConfig> LoadBertConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> json, ReadJsonFile(path, JsonRoot::kObject));
  if (!json) return absl::NotFoundError(absl::StrCat(path, ": not found"));

  TROUPE_ASSIGN_OR_RETURN(const std::string model_type, JsonStringOr(*json, path, "model_type", ""));
  TROUPE_ASSIGN_OR_RETURN(const std::string act, JsonStringOr(*json, path, "hidden_act", "gelu"));
  TROUPE_ASSIGN_OR_RETURN(const std::string positions,
                          JsonStringOr(*json, path, "position_embedding_type", "absolute"));
  if (model_type != "bert") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": model_type '", model_type, "' is not supported (want 'bert')"));
  }
  if (act != "gelu") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": hidden_act '", act, "' is not supported (want 'gelu')"));
  }
  if (positions != "absolute") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": position_embedding_type '", positions,
                                                   "' is not supported (want 'absolute')"));
  }

  BertConfig c;
  constexpr int kMaxDim = 1 << 16;
  TROUPE_ASSIGN_OR_RETURN(c.vocab_size, JsonIntAsInt(*json, path, "vocab_size", 1, 1 << 24));
  TROUPE_ASSIGN_OR_RETURN(c.hidden_size, JsonIntAsInt(*json, path, "hidden_size", 1, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.num_layers, JsonIntAsInt(*json, path, "num_hidden_layers", 1, 1024));
  TROUPE_ASSIGN_OR_RETURN(c.num_heads, JsonIntAsInt(*json, path, "num_attention_heads", 1, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.intermediate_size, JsonIntAsInt(*json, path, "intermediate_size", 1, 4 * kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.max_position_embeddings, JsonIntAsInt(*json, path, "max_position_embeddings", 2, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.type_vocab_size, JsonIntAsInt(*json, path, "type_vocab_size", 1, 1024));
  if (c.hidden_size % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": hidden_size ", c.hidden_size,
                                                   " is not a multiple of num_attention_heads ",
                                                   c.num_heads));
  }
  const auto eps = json->find("layer_norm_eps");
  if (eps != json->end()) {
    if (!eps->is_number() || !(eps->get<double>() > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": layer_norm_eps must be > 0"));
    }
    c.layer_norm_eps = static_cast<float>(eps->get<double>());
  }

  // ---- sentence-transformers files (optional) ----
  c.max_seq_length = std::min(256, c.max_position_embeddings);
  const std::string st_path = model_dir + "/sentence_bert_config.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> st,
                          ReadJsonFile(st_path, JsonRoot::kObject));
  if (st && st->contains("max_seq_length")) {
    TROUPE_ASSIGN_OR_RETURN(c.max_seq_length, JsonIntAsInt(*st, st_path, "max_seq_length", 2, c.max_position_embeddings));
  }
  const std::string pooling_path = model_dir + "/1_Pooling/config.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> pooling,
                          ReadJsonFile(pooling_path, JsonRoot::kObject));
  if (pooling) TROUPE_RETURN_IF_ERROR(CheckPooling(pooling_path, *pooling));
  const std::string modules_path = model_dir + "/modules.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> modules,
                          ReadJsonFile(modules_path, JsonRoot::kArray));
  // Without modules.json sentence-transformers builds Transformer + Pooling, no Normalize.
  c.normalize = false;
  if (modules) {
    for (const nlohmann::json& module : *modules) {
      const auto type = module.is_object() ? module.find("type") : module.end();
      if (type == module.end() || !type->is_string()) continue;
      const std::string name = type->get<std::string>();
      const std::string_view suffix = "Normalize";
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        c.normalize = true;
      }
    }
  }
  const std::string tok_path = model_dir + "/tokenizer_config.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> tok,
                          ReadJsonFile(tok_path, JsonRoot::kObject));
  if (tok) {
    const auto lower = tok->find("do_lower_case");
    if (lower != tok->end() && lower->is_boolean() && !lower->get<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(tok_path, ": do_lower_case = false; only uncased vocabularies work"));
    }
  }
  return c;
}

}  // namespace troupe
