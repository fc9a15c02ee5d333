// Base of the concrete tokenizers: owns the Vocab, splits text at special tokens (Encode,
// EncodePrompt) and answers every Tokenizer query except kind(); the concrete class encodes the
// plain pieces. Immutable; safe for concurrent use from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace troupe {

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}

  std::vector<TokenId> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const final;
  std::vector<TokenId> EncodePrompt(const PromptText& prompt, bool add_bos) const final;

  int vocab_size() const override { return vocab_.size(); }
  std::string TokenBytes(TokenId id, bool render_special) const override {
    return std::string(vocab_.Piece(id, render_special));
  }
  std::string_view TokenText(TokenId id) const override {
    return vocab_.InRange(id) ? std::string_view(vocab_.text(id)) : std::string_view();
  }
  TokenId bos_id() const override { return vocab_.bos_id(); }
  TokenId eos_id() const override { return vocab_.eos_id(); }
  bool add_bos() const override { return vocab_.add_bos(); }
  bool IsEndOfGeneration(TokenId id) const override { return vocab_.IsEndOfGeneration(id); }
  bool IsSpecial(TokenId id) const override { return vocab_.IsSpecial(id); }
  TokenId Find(std::string_view token_text) const override { return vocab_.Find(token_text); }

  const Vocab& vocab() const { return vocab_; }

 protected:
  // Appends the ids of `fragments` of `text` (special ids as they are, byte ranges tokenized;
  // two byte ranges are never adjacent).
  virtual void EncodeFragments(std::string_view text,
                               const std::vector<Vocab::Fragment>& fragments,
                               std::vector<TokenId>* out) const = 0;

 private:
  Vocab vocab_;
};

}  // namespace troupe
