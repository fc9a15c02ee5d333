// WordPiece: vocabulary loading, special-token matching, pre-tokenization and greedy
// longest-match-first splitting.
#include "engine/embedding/wordpiece_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/embedding/bert_unicode.h"
#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

constexpr std::string_view kContinuation = "##";
// HF's tokenizer.json lists these as added tokens: found in raw text before normalization, each
// becomes its own id. Those absent from a vocabulary are ignored.
constexpr std::string_view kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

}  // namespace

absl::StatusOr<std::unique_ptr<WordpieceTokenizer>> WordpieceTokenizer::Load(
    const std::string& vocab_path, const WordpieceOptions& options) {
  std::ifstream in(vocab_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(vocab_path, ": cannot open vocabulary"));
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(std::move(line));
  }
  auto tokenizer = FromTokens(std::move(tokens), options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(vocab_path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<WordpieceTokenizer>> WordpieceTokenizer::FromTokens(
    std::vector<std::string> tokens, const WordpieceOptions& options) {
  if (tokens.empty()) return absl::InvalidArgumentError("empty vocabulary");
  if (options.max_tokens < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens must be >= 2 (room for [CLS] and [SEP]), got ", options.max_tokens));
  }
  std::unique_ptr<WordpieceTokenizer> t(new WordpieceTokenizer());
  t->options_ = options;
  t->tokens_ = std::move(tokens);
  t->ids_.reserve(t->tokens_.size());
  for (size_t i = 0; i < t->tokens_.size(); ++i) {
    const std::string& token = t->tokens_[i];
    if (!t->ids_.emplace(token, static_cast<int32_t>(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate token '", token, "' at lines ",
                                                     t->ids_[token] + 1, " and ", i + 1));
    }
    t->max_token_bytes_ = std::max(t->max_token_bytes_, token.size());
  }
  t->unk_id_ = t->TokenId("[UNK]");
  t->cls_id_ = t->TokenId("[CLS]");
  t->sep_id_ = t->TokenId("[SEP]");
  if (t->unk_id_ < 0 || t->cls_id_ < 0 || t->sep_id_ < 0) {
    return absl::InvalidArgumentError("vocabulary lacks [UNK], [CLS] or [SEP]");
  }
  return t;
}

int32_t WordpieceTokenizer::TokenId(std::string_view token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int32_t> WordpieceTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(64);
  ids.push_back(cls_id_);
  const std::vector<int32_t> pieces = EncodeWordpieces(text, options_.max_tokens - 2);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.push_back(sep_id_);
  return ids;
}

// Design: one pass over the text. Each code point is normalized on its own (the normalizer is
// per code point), and its output is fed to the pre-tokenizer state: whitespace ends the current
// word, punctuation ends it and forms a word of its own, anything else extends it. Each finished
// word is split into wordpieces at once, so a long text stops being read once `max_pieces` ids
// exist (HF truncates after tokenizing everything; the kept prefix is the same).
std::vector<int32_t> WordpieceTokenizer::EncodeWordpieces(std::string_view text,
                                                          int max_pieces) const {
  std::vector<int32_t> ids;
  const size_t limit = max_pieces < 0 ? SIZE_MAX : static_cast<size_t>(max_pieces);
  std::string word;  // UTF-8 of the word being collected
  int word_chars = 0;
  std::string scratch;
  std::u32string normalized;  // one code point's normalizer output
  const auto flush = [&] {
    if (word_chars > 0) AppendWord(word, word_chars, &scratch, &ids);
    word.clear();
    word_chars = 0;
  };
  size_t offset = 0;
  while (offset < text.size() && ids.size() < limit) {
    if (text[offset] == '[') {
      const auto special =
          std::find_if(std::begin(kSpecialTokens), std::end(kSpecialTokens),
                       [&](std::string_view s) { return text.substr(offset, s.size()) == s; });
      if (special != std::end(kSpecialTokens) && TokenId(*special) >= 0) {
        flush();
        ids.push_back(TokenId(*special));
        offset += special->size();
        continue;
      }
    }
    normalized.clear();
    bert_unicode::AppendNormalized(unicode::DecodeOne(text, &offset), &normalized);
    for (const char32_t c : normalized) {
      if (bert_unicode::IsWhitespace(c)) {
        flush();
      } else if (bert_unicode::IsPunctuation(c)) {
        flush();
        unicode::AppendUtf8(c, &word);
        word_chars = 1;
        flush();
      } else {
        unicode::AppendUtf8(c, &word);
        ++word_chars;
      }
    }
  }
  if (ids.size() < limit) flush();
  if (ids.size() > limit) ids.resize(limit);
  return ids;
}

void WordpieceTokenizer::AppendWord(std::string_view word, int num_chars, std::string* scratch,
                                    std::vector<int32_t>* ids) const {
  if (num_chars > options_.max_input_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t first_piece = ids->size();
  size_t start = 0;
  while (start < word.size()) {
    const size_t prefix = start > 0 ? kContinuation.size() : 0;
    // Longest candidate first; none longer than the longest token can match.
    const size_t budget = max_token_bytes_ > prefix ? max_token_bytes_ - prefix : 0;
    size_t end = std::min(word.size(), start + budget);
    int32_t id = -1;
    while (end > start) {
      // Back up to a character boundary (UTF-8 continuation bytes are 10xxxxxx).
      while (end > start && end < word.size() && (word[end] & 0xC0) == 0x80) --end;
      if (end == start) break;
      scratch->assign(start > 0 ? kContinuation : std::string_view());
      scratch->append(word.substr(start, end - start));
      id = TokenId(*scratch);
      if (id >= 0) break;
      --end;
    }
    if (id < 0) {
      ids->resize(first_piece);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(id);
    start = end;
  }
}

}  // namespace troupe
