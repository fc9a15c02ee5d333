// SentencePiece-style BPE ("llama" GGUF vocabularies, e.g. Llama-2, Mistral, stories260K), as
// llama.cpp's llm_tokenizer_spm: spaces become "▁", a "▁" is prepended to text that starts the
// input or follows a special token (add_space_prefix), adjacent pieces merge greedily by token
// score, and characters without a token fall back to <0xXX> byte tokens. Immutable; safe for
// concurrent use from any thread.
#pragma once

#include <string_view>
#include <vector>

#include "engine/tokenizer/vocab_tokenizer.h"

namespace troupe {

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : VocabTokenizer(std::move(vocab)) {}

  Kind kind() const override { return Kind::kSentencePiece; }

 private:
  void EncodeFragments(std::string_view text, const std::vector<Vocab::Fragment>& fragments,
                       std::vector<TokenId>* out) const override;
  // Tokenizes one fragment of plain text whose spaces are already "▁"; appends to *out.
  void EncodeFragment(std::string_view text, std::vector<TokenId>* out) const;
  // Appends the byte-fallback tokens for `bytes`.
  void AppendBytes(std::string_view bytes, std::vector<TokenId>* out) const;
};

}  // namespace troupe
