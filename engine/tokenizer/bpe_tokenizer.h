// GPT-2 byte-level BPE ("gpt2" GGUF vocabularies: SmolLM2, Llama-3, Qwen2), as llama.cpp's
// llm_tokenizer_bpe: special tokens are split out first, the pre-tokenizer cuts the rest into
// words, each word's bytes are mapped to printable code points, and adjacent symbols merge by
// rank (lowest first) from tokenizer.ggml.merges. Immutable; safe for concurrent use from any
// thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/vocab_tokenizer.h"

namespace troupe {

class BpeTokenizer final : public VocabTokenizer {
 public:
  // `merges` are "left right" strings; a merge's rank is its index.
  BpeTokenizer(Vocab vocab, PreTokenizerConfig pre, const std::vector<std::string>& merges);

  Kind kind() const override { return Kind::kBytePairGpt2; }

 private:
  void EncodeFragments(std::string_view text, const std::vector<Vocab::Fragment>& fragments,
                       std::vector<TokenId>* out) const override;
  // Merges one byte-encoded word and appends its tokens to *out.
  void EncodeWord(std::string_view word, std::vector<TokenId>* out) const;
  // Rank of merging `left` and `right`, -1 if they never merge. `key` is scratch space.
  int Rank(std::string_view left, std::string_view right, std::string* key) const;

  PreTokenizerConfig pre_;
  StringIdMap ranks_;  // "left right" -> rank
};

}  // namespace troupe
