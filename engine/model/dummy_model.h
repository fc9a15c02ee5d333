// `--load-format dummy` (as vLLM's): the config, random bf16 weights and a byte-level tokenizer of
// a named real model shape, so real shapes can be served and benchmarked without weight files.
// Built once at load time, then read-only (safe to share across threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"
#include "engine/tokenizer/tokenizer.h"

namespace troupe {

// The shapes DummyModelConfig knows, e.g. "llama-3-8b", "llama-3.1-8b", "smollm2-135m".
std::vector<std::string> DummyModelShapes();

// The hyper-parameters of the named real model (architecture "llama", name "dummy-<shape>",
// num_parameters counted as ModelConfigFromGguf would count the real file's tensors).
// kInvalidArgument listing the known shapes for an unknown name.
[[nodiscard]] absl::StatusOr<ModelConfig> DummyModelConfig(std::string_view shape);

// Random weights for `config`, every matrix bf16 (GgmlType::kBF16) in one buffer this object owns;
// norms are all 1.0 and a tied config's output is a view of token_embd.
//
// Element e of tensor t (token_embd = 0, output = 1, then 7 matrices per layer in LayerWeights
// order) is a function of (seed, t, e) alone: a splitmix64 hash mapped uniformly to
// [-kRange, kRange] (std 0.02, the usual Llama init scale), so the bytes are the same for any
// thread count. Filling runs on `num_threads` std::threads over fixed-size chunks.
//
// Thread-safety: immutable after Create; safe to read from any thread.
class DummyWeights {
 public:
  static constexpr float kRange = 0.034641016f;  // 0.02 * sqrt(3): uniform with std 0.02

  // Allocates and fills the weights. num_threads 0 = one per core.
  // kResourceExhausted when the buffer cannot be allocated (llama-3-8b needs 16 GB).
  // REQUIRES: config is valid (positive dims, as from DummyModelConfig or ModelConfigFromGguf).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DummyWeights>> Create(
      const ModelConfig& config, uint64_t seed, int num_threads = 0);

  DummyWeights(const DummyWeights&) = delete;
  DummyWeights& operator=(const DummyWeights&) = delete;

  // Views into this object's buffers: must not outlive it.
  const ModelWeights& weights() const { return weights_; }
  // Bytes of the buffer holding the bf16 matrices (each padded to 64 bytes).
  int64_t num_bytes() const { return num_bytes_; }

 private:
  struct FreeDeleter {
    void operator()(std::byte* p) const;
  };
  DummyWeights() = default;

  std::unique_ptr<std::byte, FreeDeleter> buffer_;  // every matrix, 64-byte aligned, bf16
  ModelWeights weights_;
  int64_t num_bytes_ = 0;
};

// A GPT-2 byte-level tokenizer for dummy weights: ids 0..255 are the 256 byte characters (byte
// b at id b, so any text tokenizes to its bytes), id 256 is the control token "<|endoftext|>"
// (EOS, BOS; no BOS is added), and ids 257.. are filler tokens "<dummy_N>" up to vocab_size.
// REQUIRES: vocab_size > 256. kInvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tokenizer>> DummyTokenizer(int vocab_size);

}  // namespace troupe
