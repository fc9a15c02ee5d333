// SentencePiece-style BPE ("llama" GGUF vocabularies, e.g. Llama-2, Mistral, stories260K), as
// llama.cpp's llm_tokenizer_spm: spaces become "▁", a "▁" is prepended to text that starts the
// input or follows a special token (add_space_prefix), adjacent pieces merge greedily by token
// score, and characters without a token fall back to <0xXX> byte tokens. The same shape read
// from a Hugging Face tokenizer.json (Llama 2, Mistral 7B: BPE with byte_fallback, "▁" for
// spaces) merges by the file's pair ranks instead, as `tokenizers` does, with its Metaspace
// prepend scheme (SpmOptions). Immutable; safe for concurrent use from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/vocab_tokenizer.h"

namespace troupe {

// Where "▁" is put in front of a fragment of plain text (fragments are what special tokens cut
// the input into).
enum class SpmPrepend {
  kAfterSpecial,  // the input's start and after each special token (llama.cpp; tokenizer.json's
                  // legacy Prepend normalizer, which runs once per fragment)
  kFirst,         // only the input's start, unless it starts with a space (Metaspace
                  // prepend_scheme "first")
  kAlways,        // every fragment not starting with a space (Metaspace "always")
  kNever,         // none (Metaspace "never")
};

struct SpmOptions {
  SpmPrepend prepend = SpmPrepend::kAfterSpecial;  // applies when the vocab's add_space_prefix
  // "left right" pair ranks (tokenizer.json); empty = merge by the merged token's score.
  std::vector<std::string> merges;
  bool split_words = false;  // Metaspace split: each "▁" starts a word that merges on its own
};

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab, SpmOptions options = {});

  Kind kind() const override { return Kind::kSentencePiece; }

 private:
  void EncodeFragments(std::string_view text, const std::vector<Vocab::Fragment>& fragments,
                       std::vector<TokenId>* out) const override;
  // Tokenizes one fragment of plain text whose spaces are already "▁"; appends to *out.
  void EncodeFragment(std::string_view text, std::vector<TokenId>* out) const;
  // Appends the byte-fallback tokens for `bytes`.
  void AppendBytes(std::string_view bytes, std::vector<TokenId>* out) const;

  SpmOptions options_;
  StringIdMap ranks_;  // "left right" -> rank, from options_.merges
};

}  // namespace troupe
