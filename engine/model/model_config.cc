// ModelConfigFromGguf: the "llama" metadata keys -> ModelConfig, with every value range-checked
// so later code (RopeInvFreq, buffer sizing) can rely on it.
#include "engine/model/model_config.h"

#include <climits>
#include <cmath>
#include <numbers>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/formats/gguf.h"

namespace troupe {
namespace {

constexpr absl::string_view kArch = "llama";

// Keys are "<arch>.<suffix>".
std::string Key(absl::string_view suffix) { return absl::StrCat(kArch, ".", suffix); }

absl::Status Invalid(const GgufFile& file, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", what));
}

// Reads an integer key into [min_value, max_value]. nullopt default = required.
absl::StatusOr<int> ReadInt(const GgufFile& file, const std::string& key,
                            std::optional<int> default_value, int min_value = 1,
                            int max_value = INT_MAX) {
  absl::StatusOr<uint64_t> v = file.GetUint(key);
  if (absl::IsNotFound(v.status())) {
    if (default_value) return *default_value;
    return Invalid(file, absl::StrCat("missing required metadata key '", key, "'"));
  }
  if (!v.ok()) return absl::InvalidArgumentError(v.status().message());
  if (*v < static_cast<uint64_t>(min_value) || *v > static_cast<uint64_t>(max_value)) {
    return Invalid(file, absl::StrCat("metadata key '", key, "' = ", *v, " is out of range [",
                                      min_value, ", ", max_value, "]"));
  }
  return static_cast<int>(*v);
}

// Reads a finite positive float key. nullopt default = required.
absl::StatusOr<float> ReadPositiveFloat(const GgufFile& file, const std::string& key,
                                        std::optional<float> default_value) {
  absl::StatusOr<double> v = file.GetFloat(key);
  if (absl::IsNotFound(v.status())) {
    if (default_value) return *default_value;
    return Invalid(file, absl::StrCat("missing required metadata key '", key, "'"));
  }
  if (!v.ok()) return absl::InvalidArgumentError(v.status().message());
  if (!std::isfinite(*v) || *v <= 0.0 || *v > 3.0e38) {
    return Invalid(
        file, absl::StrCat("metadata key '", key, "' = ", *v, " must be a finite positive number"));
  }
  return static_cast<float>(*v);
}

absl::StatusOr<int> ReadVocabSize(const GgufFile& file) {
  if (file.Find(Key("vocab_size")) != nullptr) return ReadInt(file, Key("vocab_size"), {});
  const GgufValue* tokens = file.Find("tokenizer.ggml.tokens");
  if (tokens != nullptr && tokens->type == GgufValueType::kArray && !tokens->array.empty() &&
      tokens->array.size() <= static_cast<size_t>(INT_MAX)) {
    return static_cast<int>(tokens->array.size());
  }
  return Invalid(file, absl::StrCat("cannot tell the vocabulary size: neither '", Key("vocab_size"),
                                    "' nor a non-empty 'tokenizer.ggml.tokens' array is present"));
}

// ---- RoPE ----

// llama.cpp's converter does not write Llama 3.1+ RoPE scaling as metadata; it stores the
// per-frequency divisors in the tensor rope_freqs.weight [rot_dim/2] (inv_freq[i] is divided by
// entry i). We map it back to RopeConfig: low/high frequency factors and the original context
// come from <arch>.rope.scaling.{low_freq_factor, high_freq_factor, original_context_length} if
// present, else the values every Llama 3.x release uses (1, 4, 8192); the factor comes from
// rope.scaling.factor, else from the tensor (a fully scaled low-frequency entry equals it: 8 for
// Llama 3.1, 32 for 3.2), else 8. Finally the divisors RopeInvFreq implies are compared with the
// tensor, so a file that does not follow the llama3 rule is rejected instead of being run with
// wrong positions.
absl::Status CheckLlama3FreqTensor(const GgufFile& file, const GgufTensorInfo& tensor,
                                   bool factor_from_metadata, RopeConfig& rope) {
  const int half = rope.rot_dim / 2;
  if (tensor.dims.size() != 1 || tensor.dims[0] != half) {
    return Invalid(file, absl::StrCat("tensor 'rope_freqs.weight' has ", tensor.dims.size(),
                                      " dims with ", tensor.num_elements(), " elements, expected [",
                                      half, "] (rot_dim / 2)"));
  }
  TROUPE_ASSIGN_OR_RETURN(const std::vector<float> divisors, TensorToFloats(file, tensor));
  RopeConfig plain = rope;
  plain.scaling = RopeScaling::kNone;
  const std::vector<float> base = RopeInvFreq(plain);
  if (!factor_from_metadata) {
    // An entry past the low-frequency wavelength is the factor itself.
    const double low_wavelen = rope.original_context / static_cast<double>(rope.low_freq_factor);
    for (int i = 0; i < half; ++i) {
      if (2.0 * std::numbers::pi / base[i] > low_wavelen) {
        if (!std::isfinite(divisors[i]) || divisors[i] <= 0.0f) {
          return Invalid(file, absl::StrCat("rope_freqs.weight[", i, "] = ", divisors[i],
                                            " is not a positive number"));
        }
        rope.factor = divisors[i];
        break;
      }
    }
  }
  const std::vector<float> scaled = RopeInvFreq(rope);
  for (int i = 0; i < half; ++i) {
    const double want = static_cast<double>(base[i]) / scaled[i];
    if (!(std::fabs(divisors[i] - want) <= 1e-3 * want)) {
      return Invalid(
          file, absl::StrCat("rope_freqs.weight[", i, "] = ", divisors[i],
                             " does not match llama3 RoPE scaling "
                             "(factor ",
                             rope.factor, ", low_freq_factor ", rope.low_freq_factor,
                             ", high_freq_factor ", rope.high_freq_factor, ", original context ",
                             rope.original_context, ") which gives ", want));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadRopeScaling(const GgufFile& file, RopeConfig& rope) {
  std::string type;
  if (file.Find(Key("rope.scaling.type")) != nullptr) {
    TROUPE_ASSIGN_OR_RETURN(type, file.GetString(Key("rope.scaling.type")));
  }
  const GgufTensorInfo* freqs = file.FindTensor("rope_freqs.weight");
  if (freqs != nullptr && !type.empty() && type != "llama3") {
    return Invalid(file, absl::StrCat("rope.scaling.type '", type,
                                      "' conflicts with the llama3 tensor rope_freqs.weight"));
  }
  if (type == "llama3" || freqs != nullptr) {
    rope.scaling = RopeScaling::kLlama3;
    const bool has_factor = file.Find(Key("rope.scaling.factor")) != nullptr;
    TROUPE_ASSIGN_OR_RETURN(rope.factor, ReadPositiveFloat(file, Key("rope.scaling.factor"), 8.0f));
    TROUPE_ASSIGN_OR_RETURN(rope.low_freq_factor,
                            ReadPositiveFloat(file, Key("rope.scaling.low_freq_factor"), 1.0f));
    TROUPE_ASSIGN_OR_RETURN(rope.high_freq_factor,
                            ReadPositiveFloat(file, Key("rope.scaling.high_freq_factor"), 4.0f));
    TROUPE_ASSIGN_OR_RETURN(rope.original_context,
                            ReadInt(file, Key("rope.scaling.original_context_length"), 8192));
    if (freqs != nullptr) return CheckLlama3FreqTensor(file, *freqs, has_factor, rope);
    return absl::OkStatus();
  }
  if (type == "linear") {
    rope.scaling = RopeScaling::kLinear;
    TROUPE_ASSIGN_OR_RETURN(rope.factor, ReadPositiveFloat(file, Key("rope.scaling.factor"), {}));
    TROUPE_ASSIGN_OR_RETURN(
        rope.original_context,
        ReadInt(file, Key("rope.scaling.original_context_length"), rope.original_context));
    return absl::OkStatus();
  }
  if (!type.empty() && type != "none") {
    return Invalid(file, absl::StrCat("unsupported rope scaling type '", type, "'"));
  }
  // Pre-2023-11 files spell linear scaling as rope.scale_linear.
  if (file.Find(Key("rope.scale_linear")) != nullptr) {
    TROUPE_ASSIGN_OR_RETURN(const float factor,
                            ReadPositiveFloat(file, Key("rope.scale_linear"), {}));
    if (factor != 1.0f) {
      rope.scaling = RopeScaling::kLinear;
      rope.factor = factor;
    }
  }
  return absl::OkStatus();
}

// ---- attention shape ----

absl::Status ReadAttentionShape(const GgufFile& file, ModelConfig& c) {
  TROUPE_ASSIGN_OR_RETURN(c.num_heads, ReadInt(file, Key("attention.head_count"), {}));
  TROUPE_ASSIGN_OR_RETURN(c.num_kv_heads,
                          ReadInt(file, Key("attention.head_count_kv"), c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return Invalid(file, absl::StrCat("head_count ", c.num_heads,
                                      " is not a multiple of head_count_kv ", c.num_kv_heads));
  }
  const bool has_key_length = file.Find(Key("attention.key_length")) != nullptr;
  if (!has_key_length && c.dim % c.num_heads != 0) {
    return Invalid(file, absl::StrCat("embedding_length ", c.dim,
                                      " is not a multiple of head_count ", c.num_heads));
  }
  TROUPE_ASSIGN_OR_RETURN(c.head_dim,
                          ReadInt(file, Key("attention.key_length"), c.dim / c.num_heads));
  TROUPE_ASSIGN_OR_RETURN(const int value_length,
                          ReadInt(file, Key("attention.value_length"), c.head_dim));
  if (value_length != c.head_dim) {
    return Invalid(file,
                   absl::StrCat("attention.key_length ", c.head_dim, " != attention.value_length ",
                                value_length, " is not supported"));
  }
  if (static_cast<int64_t>(c.num_heads) * c.head_dim > INT_MAX) {
    return Invalid(file, "head_count * head_dim overflows int");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file) {
  ModelConfig c;
  absl::StatusOr<std::string> arch = file.GetString("general.architecture");
  if (absl::IsNotFound(arch.status())) {
    return Invalid(file, "missing required metadata key 'general.architecture'");
  }
  if (!arch.ok()) return absl::InvalidArgumentError(arch.status().message());
  if (*arch != kArch) return Invalid(file, absl::StrCat("unsupported architecture ", *arch));
  c.architecture = *arch;
  if (file.Find("general.name") != nullptr) {
    TROUPE_ASSIGN_OR_RETURN(c.name, file.GetString("general.name"));
  }
  TROUPE_ASSIGN_OR_RETURN(c.dim, ReadInt(file, Key("embedding_length"), {}));
  TROUPE_ASSIGN_OR_RETURN(c.num_layers, ReadInt(file, Key("block_count"), {}));
  TROUPE_ASSIGN_OR_RETURN(c.ffn_dim, ReadInt(file, Key("feed_forward_length"), {}));
  TROUPE_ASSIGN_OR_RETURN(c.context_length, ReadInt(file, Key("context_length"), {}));
  TROUPE_ASSIGN_OR_RETURN(c.rms_eps,
                          ReadPositiveFloat(file, Key("attention.layer_norm_rms_epsilon"), {}));
  TROUPE_RETURN_IF_ERROR(ReadAttentionShape(file, c));
  TROUPE_ASSIGN_OR_RETURN(c.vocab_size, ReadVocabSize(file));

  c.rope.head_dim = c.head_dim;
  c.rope.neox = false;  // llama GGUF permutes Q/K rows for interleaved-pair rotation
  TROUPE_ASSIGN_OR_RETURN(c.rope.rot_dim, ReadInt(file, Key("rope.dimension_count"), c.head_dim));
  if (c.rope.rot_dim > c.head_dim || c.rope.rot_dim % 2 != 0) {
    return Invalid(file, absl::StrCat("rope.dimension_count ", c.rope.rot_dim,
                                      " must be even and <= head_dim ", c.head_dim));
  }
  TROUPE_ASSIGN_OR_RETURN(c.rope.theta, ReadPositiveFloat(file, Key("rope.freq_base"), 10000.0f));
  TROUPE_RETURN_IF_ERROR(ReadRopeScaling(file, c.rope));

  c.tied_embeddings = file.FindTensor("output.weight") == nullptr;
  for (const GgufTensorInfo& t : file.tensors()) c.num_parameters += t.num_elements();
  return c;
}

double AttentionPairCost(const ModelConfig& config) {
  const double q_width = static_cast<double>(config.num_heads) * config.head_dim;
  const double kv_width = static_cast<double>(config.num_kv_heads) * config.head_dim;
  const double per_token = config.dim * (2 * q_width + 2 * kv_width) + 3.0 * config.dim * config.ffn_dim;
  const double per_pair = 2 * q_width;
  return per_token > 0 ? per_pair / per_token : 0;
}

}  // namespace troupe
