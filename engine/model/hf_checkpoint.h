// A Hugging Face model folder as troupe loads it: config.json (Llama, Mistral, Qwen2) and the
// safetensors weights (model.safetensors, or the shards model.safetensors.index.json names),
// mapped read-only; bf16/f16/f32 matrices are used in place as the GGUF ones are. The tokenizer
// files of the folder are read by engine/tokenizer/hf_tokenizer.h. Immutable after Open(), so
// safe to share across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "nlohmann/json.hpp"

namespace troupe {

class SafetensorsFile;

// Whether `path` is a directory holding a config.json (what --model DIR means).
bool IsHfCheckpointDir(const std::string& path);

// config.json (already parsed; `path` names it in errors) -> ModelConfig. model_type llama,
// mistral or qwen2 with hidden_act silu; head_dim, num_key_value_heads, rope_theta (or
// transformers 5's rope_parameters), rope_scaling linear/llama3, tie_word_embeddings,
// attention_bias (Qwen2: always) and a sliding window no shorter than the context are read.
// A Mistral/Qwen2 sliding window shorter than max_position_embeddings caps context_length to
// the window, where full attention and the model's agree. RoPE is neox-style (HF layout).
// kInvalidArgument names the file and the key for anything else. num_parameters is left 0.
[[nodiscard]] absl::StatusOr<ModelConfig> ModelConfigFromHfConfig(const nlohmann::json& config,
                                                                  const std::string& path);

class HfCheckpoint {
 public:
  // Reads `dir`/config.json and maps the weights. Errors name the file and tensor: kNotFound
  // (no config.json, no weights, a shard the index names missing), kInvalidArgument (config,
  // a missing tensor, a shape that disagrees with the config, a dtype other than F32/F16/BF16,
  // a tensor in two shards), and the safetensors reader's own errors.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HfCheckpoint>> Open(const std::string& dir);
  ~HfCheckpoint();

  HfCheckpoint(const HfCheckpoint&) = delete;
  HfCheckpoint& operator=(const HfCheckpoint&) = delete;

  const ModelConfig& config() const { return config_; }
  // Views into the shards' mappings (or into copies of the rare misaligned tensor); valid while
  // *this lives.
  const ModelWeights& weights() const { return weights_; }
  // Bytes of all weight files.
  uint64_t file_bytes() const { return file_bytes_; }

 private:
  HfCheckpoint() = default;
  class Loader;

  ModelConfig config_;
  ModelWeights weights_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<std::vector<uint8_t>> copies_;  // tensors whose data was not element-aligned
  uint64_t file_bytes_ = 0;
};

}  // namespace troupe
