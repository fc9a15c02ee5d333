// BERT uncased WordPiece tokenization, matching HF tokenizers' BertNormalizer + BertPreTokenizer +
// WordPiece + the [CLS] A [SEP] template (what sentence-transformers runs for all-MiniLM-L6-v2).
// Used by BertEmbedder on whichever thread embeds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe {

struct WordpieceOptions {
  // Longest encoding, [CLS] and [SEP] included; longer texts lose their tail wordpieces (HF's
  // truncation to max_length). 256 = sentence_bert_config.json's max_seq_length.
  // REQUIRES: >= 2.
  int max_tokens = 256;
  // A word with more characters (after normalization) becomes a single [UNK].
  int max_input_chars_per_word = 100;
};

// A vocabulary and the tokenization rules. Thread-safety: immutable after construction; Encode
// and every other const method are safe to call concurrently.
class WordpieceTokenizer {
 public:
  // Reads vocab.txt: one token per line, id = line number (0-based); a trailing '\r' is ignored.
  // Errors: kNotFound (missing file), kInvalidArgument (empty file, a duplicate token, or no
  // [UNK], [CLS] or [SEP] token); messages name the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WordpieceTokenizer>> Load(
      const std::string& vocab_path, const WordpieceOptions& options = {});

  // Same, from the tokens themselves (id = index); for tests. Errors as Load.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WordpieceTokenizer>> FromTokens(
      std::vector<std::string> tokens, const WordpieceOptions& options = {});

  WordpieceTokenizer(const WordpieceTokenizer&) = delete;
  WordpieceTokenizer& operator=(const WordpieceTokenizer&) = delete;

  // [CLS] wordpieces(text) [SEP], at most options().max_tokens ids; never fails (unknown text
  // gives [UNK]; an empty or all-whitespace text gives just [CLS] [SEP]).
  std::vector<int32_t> Encode(std::string_view text) const;

  // The wordpieces of `text` without special tokens, stopping after `max_pieces` of them
  // (-1 = all).
  std::vector<int32_t> EncodeWordpieces(std::string_view text, int max_pieces = -1) const;

  // The id of `token` as spelled in the vocabulary ("##ing" for a continuation), or -1.
  int32_t TokenId(std::string_view token) const;
  // The text of `id`. REQUIRES: 0 <= id < vocab_size().
  const std::string& TokenText(int32_t id) const { return tokens_[id]; }

  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  const WordpieceOptions& options() const { return options_; }

 private:
  // Heterogeneous lookup: find(std::string_view) without building a std::string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  WordpieceTokenizer() = default;

  // Appends the wordpieces of one pre-tokenized word (UTF-8) to *ids, [UNK] when it cannot be
  // covered. `scratch` is reused between calls to avoid allocations.
  void AppendWord(std::string_view word, int num_chars, std::string* scratch,
                  std::vector<int32_t>* ids) const;

  // ---- Constant after construction ----
  WordpieceOptions options_;
  std::vector<std::string> tokens_;  // [vocab_size]
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  size_t max_token_bytes_ = 0;  // longest token, "##" included: bounds the match search
  int32_t unk_id_ = -1;
  int32_t cls_id_ = -1;
  int32_t sep_id_ = -1;
};

}  // namespace troupe
