// Base of the concrete tokenizers: owns the Vocab and answers every Tokenizer query except
// kind() and Encode(). Immutable; safe for concurrent use from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace troupe {

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}

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
  TokenId Find(std::string_view token_text) const override { return vocab_.Find(token_text); }

  const Vocab& vocab() const { return vocab_; }

 private:
  Vocab vocab_;
};

}  // namespace troupe
