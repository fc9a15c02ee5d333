// Where the tests' models and golden files live. The small models are always there: stories260K
// and its llama.cpp golden in ../shared (fetched once per machine), SmolLM2 under models/
// (scripts/fetch-model.sh); the tiny random-weight models are in tests/testdata/tiny (GGUF) and
// tests/testdata/hf (Hugging Face folders). MiniLM, the embedder, is in minilm.h.
#pragma once

#include <string>

namespace troupe::testing {

// stories260K (Karpathy's tinyllamas), the quickest real model.
inline std::string StoriesPath() {
  return std::string(TROUPE_SHARED_DIR) + "/models/stories260K.gguf";
}
// llama.cpp's greedy ids and top-5 logprobs on stories260K (f16 KV, BOS prepended).
inline std::string StoriesGoldenPath() {
  return std::string(TROUPE_SHARED_DIR) + "/golden/stories260K-greedy.json";
}
// The tiny random-weight models, tiny-<type>.gguf, and their golden.json (docs/testing.md).
inline std::string TinyModelDir() { return std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/tiny"; }
// The tiny Hugging Face model folders (scripts/golden/make_hf_models.py) and their golden.json.
inline std::string HfModelDir() { return std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/hf"; }
// SmolLM2-135M-Instruct, Q4_1: the default model.
inline std::string SmolLmPath() {
  return std::string(TROUPE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}
// SmolLM2-135M-Instruct requantized to Q4_K_M by llama-quantize (mostly Q5_0, with Q4_K / Q6_K
// ffn_down): made by scripts/peer/make-kquant-models.sh, not fetched; tests skip without it.
inline std::string SmolLmQ4KMPath() {
  return std::string(TROUPE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_K_M.gguf";
}

}  // namespace troupe::testing
