// HfCheckpoint: config.json -> ModelConfig, safetensors shards -> ModelWeights (views).
#include "engine/model/hf_checkpoint.h"

#include <climits>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/formats/json_file.h"
#include "engine/formats/safetensors.h"
#include "kernels/ggml_types.h"

namespace troupe {
namespace {

constexpr int64_t kMaxDim = 1 << 17;

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<int> IntIn(const nlohmann::json& json, const std::string& path, const char* key,
                          int64_t min_value, int64_t max_value) {
  TROUPE_ASSIGN_OR_RETURN(const int64_t v, JsonInt(json, path, key, min_value, max_value));
  return static_cast<int>(v);
}

absl::StatusOr<int> IntOr(const nlohmann::json& json, const std::string& path, const char* key,
                          int fallback, int64_t min_value, int64_t max_value) {
  TROUPE_ASSIGN_OR_RETURN(const int64_t v,
                          JsonIntOr(json, path, key, fallback, min_value, max_value));
  return static_cast<int>(v);
}

absl::StatusOr<float> PositiveOr(const nlohmann::json& json, const std::string& path,
                                 const char* key, double fallback) {
  TROUPE_ASSIGN_OR_RETURN(const double v, JsonNumberOr(json, path, key, fallback));
  if (!(v > 0.0) || v > 1e30) return Invalid(path, absl::StrCat(key, " = ", v, " must be > 0"));
  return static_cast<float>(v);
}

// rope_theta and rope_scaling (transformers 4), or rope_parameters (transformers 5, which holds
// rope_theta and the scaling keys in one object).
absl::Status ReadRope(const nlohmann::json& config, const std::string& path, RopeConfig& rope) {
  const nlohmann::json* scaling = nullptr;
  const auto params = config.find("rope_parameters");
  if (params != config.end() && params->is_object()) {
    TROUPE_ASSIGN_OR_RETURN(rope.theta, PositiveOr(*params, path, "rope_theta", 10000.0));
    scaling = &*params;
  } else {
    TROUPE_ASSIGN_OR_RETURN(rope.theta, PositiveOr(config, path, "rope_theta", 10000.0));
    const auto it = config.find("rope_scaling");
    if (it != config.end() && !it->is_null()) {
      if (!it->is_object()) return Invalid(path, "rope_scaling is not an object");
      scaling = &*it;
    }
  }
  if (scaling == nullptr) return absl::OkStatus();
  // transformers 4.45+ writes "rope_type", earlier releases "type".
  TROUPE_ASSIGN_OR_RETURN(std::string type, JsonStringOr(*scaling, path, "rope_type", ""));
  if (type.empty()) {
    TROUPE_ASSIGN_OR_RETURN(type, JsonStringOr(*scaling, path, "type", "default"));
  }
  if (type == "default") return absl::OkStatus();
  if (type == "linear") {
    rope.scaling = RopeScaling::kLinear;
    TROUPE_ASSIGN_OR_RETURN(rope.factor, PositiveOr(*scaling, path, "factor", 0.0));
    return absl::OkStatus();
  }
  if (type == "llama3") {
    rope.scaling = RopeScaling::kLlama3;
    TROUPE_ASSIGN_OR_RETURN(rope.factor, PositiveOr(*scaling, path, "factor", 0.0));
    TROUPE_ASSIGN_OR_RETURN(rope.low_freq_factor,
                            PositiveOr(*scaling, path, "low_freq_factor", 1.0));
    TROUPE_ASSIGN_OR_RETURN(rope.high_freq_factor,
                            PositiveOr(*scaling, path, "high_freq_factor", 4.0));
    TROUPE_ASSIGN_OR_RETURN(rope.original_context,
                            IntOr(*scaling, path, "original_max_position_embeddings", 8192, 1,
                                  INT_MAX));
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      return Invalid(path, "rope scaling high_freq_factor must exceed low_freq_factor");
    }
    return absl::OkStatus();
  }
  return Invalid(path, absl::StrCat("unsupported rope scaling type '", type,
                                    "' (troupe reads default, linear and llama3)"));
}

// ---- weights ----

absl::StatusOr<GgmlType> MatrixType(const std::string& dtype) {
  if (dtype == "F32") return GgmlType::kF32;
  if (dtype == "F16") return GgmlType::kF16;
  if (dtype == "BF16") return GgmlType::kBF16;
  return absl::InvalidArgumentError(dtype);
}

}  // namespace

bool IsHfCheckpointDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::is_regular_file(std::filesystem::path(path) / "config.json", ec);
}

absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const nlohmann::json& json,
                                                    const std::string& path) {
  ModelConfig c;
  TROUPE_ASSIGN_OR_RETURN(c.architecture, JsonStringOr(json, path, "model_type", ""));
  if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "qwen2") {
    return Invalid(path, absl::StrCat("model_type '", c.architecture,
                                      "' is not supported (troupe loads llama, mistral, qwen2)"));
  }
  TROUPE_ASSIGN_OR_RETURN(const std::string act, JsonStringOr(json, path, "hidden_act", "silu"));
  if (act != "silu") {
    return Invalid(path, absl::StrCat("hidden_act '", act, "' is not supported (want silu)"));
  }
  TROUPE_ASSIGN_OR_RETURN(c.name, JsonStringOr(json, path, "_name_or_path", ""));
  TROUPE_ASSIGN_OR_RETURN(c.vocab_size, IntIn(json, path, "vocab_size", 1, 1 << 24));
  TROUPE_ASSIGN_OR_RETURN(c.dim, IntIn(json, path, "hidden_size", 1, kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.num_layers, IntIn(json, path, "num_hidden_layers", 1, 1024));
  TROUPE_ASSIGN_OR_RETURN(c.num_heads, IntIn(json, path, "num_attention_heads", 1, 4096));
  TROUPE_ASSIGN_OR_RETURN(c.num_kv_heads,
                          IntOr(json, path, "num_key_value_heads", c.num_heads, 1, c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return Invalid(path, absl::StrCat("num_attention_heads ", c.num_heads,
                                      " is not a multiple of num_key_value_heads ",
                                      c.num_kv_heads));
  }
  const auto head_dim = json.find("head_dim");
  if (head_dim == json.end() || head_dim->is_null()) {
    if (c.dim % c.num_heads != 0) {
      return Invalid(path, absl::StrCat("hidden_size ", c.dim,
                                        " is not a multiple of num_attention_heads ",
                                        c.num_heads));
    }
    c.head_dim = c.dim / c.num_heads;
  } else {
    TROUPE_ASSIGN_OR_RETURN(c.head_dim, IntIn(json, path, "head_dim", 2, 1024));
  }
  if (static_cast<int64_t>(c.num_heads) * c.head_dim > kMaxDim) {
    return Invalid(path, "num_attention_heads * head_dim is too large");
  }
  TROUPE_ASSIGN_OR_RETURN(c.ffn_dim, IntIn(json, path, "intermediate_size", 1, 8 * kMaxDim));
  TROUPE_ASSIGN_OR_RETURN(c.context_length,
                          IntIn(json, path, "max_position_embeddings", 1, 1 << 24));
  TROUPE_ASSIGN_OR_RETURN(c.rms_eps, PositiveOr(json, path, "rms_norm_eps", 1e-6));
  TROUPE_ASSIGN_OR_RETURN(c.tied_embeddings,
                          JsonBoolOr(json, path, "tie_word_embeddings", false));

  // Biases: Qwen2 always has q/k/v biases (and no others); Llama and Mistral none unless
  // attention_bias (which also adds one to o_proj: not supported).
  if (c.architecture == "qwen2") {
    c.qkv_bias = true;
  } else {
    TROUPE_ASSIGN_OR_RETURN(const bool attention_bias,
                            JsonBoolOr(json, path, "attention_bias", false));
    if (attention_bias) {
      return Invalid(path, "attention_bias = true (an o_proj bias) is not supported");
    }
  }
  TROUPE_ASSIGN_OR_RETURN(const bool mlp_bias, JsonBoolOr(json, path, "mlp_bias", false));
  if (mlp_bias) return Invalid(path, "mlp_bias = true is not supported");

  // A sliding window only changes attention past its length: cap the context there.
  bool sliding = c.architecture == "mistral";
  if (c.architecture == "qwen2") {
    TROUPE_ASSIGN_OR_RETURN(sliding, JsonBoolOr(json, path, "use_sliding_window", false));
  }
  if (sliding) {
    TROUPE_ASSIGN_OR_RETURN(const int window,
                            IntOr(json, path, "sliding_window", INT_MAX, 1, INT_MAX));
    c.context_length = std::min(c.context_length, window);
  }

  c.rope.head_dim = c.head_dim;
  c.rope.rot_dim = c.head_dim;
  c.rope.neox = true;  // HF keeps Q/K rows in rotate_half order: pairs (i, i + head_dim / 2)
  TROUPE_RETURN_IF_ERROR(ReadRope(json, path, c.rope));
  return c;
}

// Finds tensors by name across the shards and turns them into views.
class HfCheckpoint::Loader {
 public:
  explicit Loader(HfCheckpoint& ckpt) : ckpt_(ckpt) {}

  absl::Status OpenShards(const std::string& dir) {
    const std::filesystem::path root(dir);
    const std::string index_path = (root / "model.safetensors.index.json").string();
    TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> index,
                            ReadJsonFile(index_path, JsonRoot::kObject));
    std::set<std::string> files;
    if (index.has_value()) {
      const auto map = index->find("weight_map");
      if (map == index->end() || !map->is_object()) {
        return Invalid(index_path, "no weight_map object");
      }
      for (const auto& [name, file] : map->items()) {
        // A shard name is a file in the folder, never a path out of it.
        if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos ||
            file.get<std::string>().empty() || file.get<std::string>()[0] == '.') {
          return Invalid(index_path, absl::StrCat("weight_map entry '", name,
                                                  "' does not name a file of the folder"));
        }
        files.insert(file.get<std::string>());
      }
    } else {
      files.insert("model.safetensors");
    }
    for (const std::string& file : files) {
      const std::string path = (root / file).string();
      if (!std::filesystem::exists(path)) {
        return absl::NotFoundError(absl::StrCat(path, ": not found (", dir,
                                                index.has_value() ? " names it in its index"
                                                                  : " has no weights)"));
      }
      TROUPE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> shard, SafetensorsFile::Open(path));
      ckpt_.file_bytes_ += std::filesystem::file_size(path);
      for (const auto& [name, info] : shard->tensors()) {
        const auto [it, inserted] = where_.emplace(name, shard.get());
        if (!inserted) {
          return Invalid(path, absl::StrCat("tensor '", name, "' is also in ", it->second->path()));
        }
        ckpt_.config_.num_parameters += info.num_elements();
      }
      ckpt_.shards_.push_back(std::move(shard));
    }
    return absl::OkStatus();
  }

  bool Has(const std::string& name) const { return where_.contains(name); }

  // A [rows, cols] matrix (HF Linear/Embedding weights are [out, in], row-major).
  absl::StatusOr<MatrixView> Matrix(const std::string& name, int64_t rows, int64_t cols) {
    TROUPE_ASSIGN_OR_RETURN(const Entry e, Find(name));
    TROUPE_RETURN_IF_ERROR(CheckShape(name, e, {rows, cols}));
    absl::StatusOr<GgmlType> type = MatrixType(e.info->dtype);
    if (!type.ok()) {
      return Invalid(e.file->path(), absl::StrCat("tensor '", name, "' has dtype ", e.info->dtype,
                                                  "; weight matrices must be F32, F16 or BF16"));
    }
    std::span<const uint8_t> bytes = e.file->Bytes(*e.info);
    const uintptr_t align = *type == GgmlType::kF32 ? 4 : 2;
    const void* data = bytes.data();
    if (reinterpret_cast<uintptr_t>(data) % align != 0) {
      // safetensors does not promise alignment; a copy keeps the kernels' typed reads legal.
      ckpt_.copies_.emplace_back(bytes.begin(), bytes.end());
      data = ckpt_.copies_.back().data();
    }
    return MatrixView{.type = *type, .data = data, .rows = rows, .cols = cols};
  }

  // A 1-D [n] vector (norm weight or bias) as float.
  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) {
    TROUPE_ASSIGN_OR_RETURN(const Entry e, Find(name));
    const int64_t shape[] = {n};
    return e.file->ReadFloat(name, shape);
  }

 private:
  struct Entry {
    const SafetensorsFile* file;
    const SafetensorsTensorInfo* info;
  };

  absl::StatusOr<Entry> Find(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing tensor '", name, "' in the ",
                                                     ckpt_.shards_.size(), " weight file(s)"));
    }
    return Entry{it->second, it->second->Find(name)};
  }

  static absl::Status CheckShape(const std::string& name, const Entry& e,
                                 const std::vector<int64_t>& expected) {
    if (e.info->shape == expected) return absl::OkStatus();
    return Invalid(e.file->path(),
                   absl::StrCat("tensor '", name, "' has shape [", absl::StrJoin(e.info->shape, ", "),
                                "], expected [", absl::StrJoin(expected, ", "), "]"));
  }

  HfCheckpoint& ckpt_;
  std::map<std::string, const SafetensorsFile*, std::less<>> where_;
};

HfCheckpoint::~HfCheckpoint() = default;

absl::StatusOr<std::unique_ptr<HfCheckpoint>> HfCheckpoint::Open(const std::string& dir) {
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> json,
                          ReadJsonFile(config_path, JsonRoot::kObject));
  if (!json.has_value()) return absl::NotFoundError(absl::StrCat(config_path, ": not found"));
  std::unique_ptr<HfCheckpoint> ckpt(new HfCheckpoint());
  TROUPE_ASSIGN_OR_RETURN(ckpt->config_, ModelConfigFromHfConfig(*json, config_path));
  ModelConfig& c = ckpt->config_;
  if (c.name.empty()) c.name = std::filesystem::path(dir).lexically_normal().filename().string();

  Loader load(*ckpt);
  TROUPE_RETURN_IF_ERROR(load.OpenShards(dir));
  // Without tie_word_embeddings the files decide (PretrainedConfig's own default is true).
  if (!json->contains("tie_word_embeddings")) c.tied_embeddings = !load.Has("lm_head.weight");
  ModelWeights& w = ckpt->weights_;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  TROUPE_ASSIGN_OR_RETURN(w.token_embd,
                          load.Matrix("model.embed_tokens.weight", c.vocab_size, c.dim));
  if (c.tied_embeddings) {
    w.output = w.token_embd;
  } else {
    TROUPE_ASSIGN_OR_RETURN(w.output, load.Matrix("lm_head.weight", c.vocab_size, c.dim));
  }
  TROUPE_ASSIGN_OR_RETURN(w.output_norm, load.Vector("model.norm.weight", c.dim));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    LayerWeights layer;
    TROUPE_ASSIGN_OR_RETURN(layer.wq, load.Matrix(p + "self_attn.q_proj.weight", q_dim, c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.wk, load.Matrix(p + "self_attn.k_proj.weight", kv_dim, c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.wv, load.Matrix(p + "self_attn.v_proj.weight", kv_dim, c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.wo, load.Matrix(p + "self_attn.o_proj.weight", c.dim, q_dim));
    TROUPE_ASSIGN_OR_RETURN(layer.w_gate,
                            load.Matrix(p + "mlp.gate_proj.weight", c.ffn_dim, c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.w_up, load.Matrix(p + "mlp.up_proj.weight", c.ffn_dim, c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.w_down,
                            load.Matrix(p + "mlp.down_proj.weight", c.dim, c.ffn_dim));
    TROUPE_ASSIGN_OR_RETURN(layer.attn_norm, load.Vector(p + "input_layernorm.weight", c.dim));
    TROUPE_ASSIGN_OR_RETURN(layer.ffn_norm,
                            load.Vector(p + "post_attention_layernorm.weight", c.dim));
    if (c.qkv_bias) {
      TROUPE_ASSIGN_OR_RETURN(layer.bq, load.Vector(p + "self_attn.q_proj.bias", q_dim));
      TROUPE_ASSIGN_OR_RETURN(layer.bk, load.Vector(p + "self_attn.k_proj.bias", kv_dim));
      TROUPE_ASSIGN_OR_RETURN(layer.bv, load.Vector(p + "self_attn.v_proj.bias", kv_dim));
    }
    w.layers.push_back(std::move(layer));
  }
  return ckpt;
}

}  // namespace troupe
