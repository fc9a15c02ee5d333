// BertConfig from config.json and the sentence-transformers files.
#include "engine/embedding/bert_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

// Parses `path` as JSON; nullopt when the file does not exist. `want_object`: must be an object
// (else an array).
absl::StatusOr<std::optional<nlohmann::json>> ReadJson(const std::string& path, bool want_object) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::optional<nlohmann::json>();
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read"));
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Operator files, but checked like any JSON troupe parses (common/json_depth.h).
  if (!JsonWithinDepth(text)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": JSON nested deeper than ", kMaxJsonDepth, " levels"));
  }
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || (want_object ? !json.is_object() : !json.is_array())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON ", want_object ? "object" : "array"));
  }
  return std::optional<nlohmann::json>(std::move(json));
}

// json[key] as an int in [min_value, max_value].
absl::StatusOr<int> IntField(const nlohmann::json& json, const std::string& path, const char* key,
                             int min_value, int max_value) {
  const auto it = json.find(key);
  if (it == json.end() || !it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing integer field '", key, "'"));
  }
  const int64_t v = it->get<int64_t>();
  if (v < min_value || v > max_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", key, " = ", v, " is outside [", min_value, ", ", max_value, "]"));
  }
  return static_cast<int>(v);
}

// json[key] as a string, or `fallback` when absent. kInvalidArgument when not a string.
absl::StatusOr<std::string> StringField(const nlohmann::json& json, const std::string& path,
                                        const char* key, const std::string& fallback) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": field '", key, "' is not a string"));
  }
  return it->get<std::string>();
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
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> json, ReadJson(path, /*want_object=*/true));
  if (!json) return absl::NotFoundError(absl::StrCat(path, ": not found"));

  TROUPE_ASSIGN_OR_RETURN(const std::string model_type, StringField(*json, path, "model_type", ""));
  TROUPE_ASSIGN_OR_RETURN(const std::string act, StringField(*json, path, "hidden_act", "gelu"));
  TROUPE_ASSIGN_OR_RETURN(const std::string positions,
                          StringField(*json, path, "position_embedding_type", "absolute"));
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
  TROUPE_ASSIGN_OR_RETURN(c.vocab_size, IntField(*json, path, "vocab_size", 1, 1 << 24));
  TROUPE_ASSIGN_OR_RETURN(c.hidden_size, IntField(*json, path, "hidden_size", 1, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.num_layers, IntField(*json, path, "num_hidden_layers", 1, 1024));
  TROUPE_ASSIGN_OR_RETURN(c.num_heads, IntField(*json, path, "num_attention_heads", 1, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.intermediate_size,
                          IntField(*json, path, "intermediate_size", 1, 4 * kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.max_position_embeddings,
                          IntField(*json, path, "max_position_embeddings", 2, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.type_vocab_size, IntField(*json, path, "type_vocab_size", 1, 1024));
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
                          ReadJson(st_path, /*want_object=*/true));
  if (st && st->contains("max_seq_length")) {
    TROUPE_ASSIGN_OR_RETURN(c.max_seq_length,
                            IntField(*st, st_path, "max_seq_length", 2, c.max_position_embeddings));
  }
  const std::string pooling_path = model_dir + "/1_Pooling/config.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> pooling,
                          ReadJson(pooling_path, /*want_object=*/true));
  if (pooling) TROUPE_RETURN_IF_ERROR(CheckPooling(pooling_path, *pooling));
  const std::string modules_path = model_dir + "/modules.json";
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> modules,
                          ReadJson(modules_path, /*want_object=*/false));
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
                          ReadJson(tok_path, /*want_object=*/true));
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
