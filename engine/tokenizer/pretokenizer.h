// Pre-tokenizer for GPT-2-style byte-level BPE: splits text into words before merges, as
// llama.cpp does for each tokenizer.ggml.pre value. The regexes are implemented by hand over
// code points (no std::regex). Pure functions: safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe {

enum class PreTokenizerKind {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)   ("gpt-2", "phi-2")
  kGpt2,
  // \p{N} (each digit alone), then kGpt2                    ("smollm", "starcoder", "refact")
  kDigitsThenGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+                                 ("llama-bpe", "llama3", "dbrx")
  kLlama3,
  // kLlama3 with \p{N} instead of \p{N}{1,3}                ("qwen2", "stablelm2")
  kQwen2,
  // llama.cpp's fallback when tokenizer.ggml.pre is missing or "default":
  // [\p{P}\$\+<=>\^~\|]+, then kGpt2, then \p{N}+, then [0-9][0-9][0-9]
  kDefault,
};

struct PreTokenizerConfig {
  PreTokenizerKind kind = PreTokenizerKind::kDefault;
  // Whole words that are already vocabulary tokens skip the merges (llama.cpp ignore_merges; the
  // Llama-3 family sets it).
  bool ignore_merges = false;
  // The model wants BOS by default when tokenizer.ggml.add_bos_token is absent (Llama-3 family).
  bool default_add_bos = false;
  // Text is put in NFC before it is split (a tokenizer.json NFC normalizer: Qwen2; llama.cpp
  // does not, so GGUF vocabularies never set it).
  bool nfc = false;
};

// Maps tokenizer.ggml.pre to its configuration ("" means default). kInvalidArgument names an
// unsupported pre-tokenizer.
[[nodiscard]] absl::StatusOr<PreTokenizerConfig> PreTokenizerFromName(std::string_view pre);

// Splits `text` into words (UTF-8, in order, concatenating to `text` with each malformed byte
// replaced by U+FFFD). Words are never empty.
std::vector<std::string> PreTokenize(PreTokenizerKind kind, std::string_view text);

}  // namespace troupe
