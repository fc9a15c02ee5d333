// The tokenizer of a Hugging Face model folder: tokenizer.json (the `tokenizers` library's
// format), tokenizer_config.json (special tokens, the chat template) and generation_config.json
// (end-of-generation ids), turned into the VocabData a GGUF file would carry, so the one BPE
// implementation serves both. Supported: byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen2 split
// rules; docs/tokenizer.md "Hugging Face tokenizer.json"). Pure functions, safe from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace troupe {

struct HfTokenizerFiles {
  VocabData vocab;            // for Tokenizer::FromVocab
  std::string chat_template;  // tokenizer_config.json's (or chat_template.jinja's); "" = none
};

// Reads `dir`/tokenizer.json, tokenizer_config.json, chat_template.jinja and
// generation_config.json (all but the first optional). kNotFound without tokenizer.json;
// kInvalidArgument naming the file and the part for what troupe does not implement (a model
// other than BPE, a pre-tokenizer split rule it does not know, a normalizer other than NFC) or
// malformed JSON.
[[nodiscard]] absl::StatusOr<HfTokenizerFiles> ReadHfTokenizerFiles(const std::string& dir);

// The decoding half, over parsed JSON (`tokenizer_config` and `generation_config` may be null
// JSON values when the files are absent); `path` names tokenizer.json in errors.
[[nodiscard]] absl::StatusOr<VocabData> VocabFromTokenizerJson(
    const nlohmann::json& tokenizer, const nlohmann::json& tokenizer_config,
    const nlohmann::json& generation_config, const std::string& path);

}  // namespace troupe
