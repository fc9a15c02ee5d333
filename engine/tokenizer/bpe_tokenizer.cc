// GPT-2 byte-level BPE (see bpe_tokenizer.h).
//
// Design: per word, the byte-encoded text goes through MergeSymbols (symbol_merge.h) with pairs
// prioritised by merge rank (lowest first, leftmost on ties). Final symbols are looked up in the
// vocabulary; a symbol that is not a token (only possible with incomplete vocabularies) is
// emitted byte by byte where single bytes are tokens, exactly as llama.cpp's
// llm_tokenizer_bpe_session.
#include "engine/tokenizer/bpe_tokenizer.h"

#include <optional>

#include "engine/tokenizer/nfc.h"
#include "engine/tokenizer/symbol_merge.h"
#include "engine/tokenizer/unicode.h"

namespace troupe {

BpeTokenizer::BpeTokenizer(Vocab vocab, PreTokenizerConfig pre,
                           const std::vector<std::string>& merges)
    : VocabTokenizer(std::move(vocab)), pre_(pre) {
  ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // llama.cpp splits at the first space after position 0 and ignores entries without one.
    const size_t space = merges[i].find(' ', 1);
    if (space == std::string::npos) continue;
    ranks_.emplace(merges[i], static_cast<int32_t>(i));  // first occurrence wins, as emplace
  }
}

int BpeTokenizer::Rank(std::string_view left, std::string_view right, std::string* key) const {
  key->assign(left);
  key->push_back(' ');
  key->append(right);
  auto it = ranks_.find(*key);
  return it == ranks_.end() ? -1 : it->second;
}

void BpeTokenizer::EncodeFragments(std::string_view text,
                                   const std::vector<Vocab::Fragment>& fragments,
                                   std::vector<TokenId>* out) const {
  std::string encoded;
  for (const Vocab::Fragment& f : fragments) {
    if (f.token >= 0) {
      out->push_back(f.token);
      continue;
    }
    const std::string_view fragment = text.substr(f.offset, f.length);
    const std::string normalized = pre_.nfc ? unicode::ToNfc(fragment) : std::string();
    for (const std::string& word : PreTokenize(pre_.kind, pre_.nfc ? normalized : fragment)) {
      encoded.clear();
      unicode::AppendByteEncoded(word, &encoded);
      EncodeWord(encoded, out);
    }
  }
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<TokenId>* out) const {
  const Vocab& v = vocab();
  if (pre_.ignore_merges) {
    const TokenId id = v.Find(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::string key;
  const auto priority = [&](std::string_view left, std::string_view right) -> std::optional<int> {
    const int rank = Rank(left, right, &key);
    if (rank < 0) return std::nullopt;
    return -rank;  // lowest rank merges first
  };
  for (const std::string_view piece : MergeSymbols(word, priority)) {
    const TokenId id = v.Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (const char& c : piece) {
      const TokenId byte_id = v.Find(std::string_view(&c, 1));
      if (byte_id >= 0) out->push_back(byte_id);
    }
  }
}

}  // namespace troupe
