// GPT-2 byte-level BPE (see bpe_tokenizer.h).
//
// Design: per word, the byte-encoded text is split into UTF-8 characters held in a linked list;
// every adjacent pair with a merge rule is queued by rank (lowest first, leftmost on ties). A
// popped pair merges if neither side changed since it was queued; then the pairs on both sides
// are queued. Final symbols are looked up in the vocabulary; a symbol that is not a token (only
// possible with incomplete vocabularies) is emitted byte by byte where single bytes are tokens,
// exactly as llama.cpp's llm_tokenizer_bpe_session.
#include "engine/tokenizer/bpe_tokenizer.h"

#include <queue>

#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;  // bytes into the word
  size_t length;  // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  int rank;
  size_t length;  // bytes of left + right when queued
};

struct BigramOrder {  // min-heap on rank, then on left index
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

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

std::vector<TokenId> BpeTokenizer::Encode(std::string_view text, bool add_bos,
                                          bool parse_special) const {
  const Vocab& v = vocab();
  std::vector<TokenId> out;
  if (add_bos && v.add_bos()) out.push_back(v.bos_id());
  std::string encoded;
  for (const Vocab::Fragment& f : v.SplitSpecial(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    for (const std::string& word : PreTokenize(pre_.kind, text.substr(f.offset, f.length))) {
      encoded.clear();
      unicode::AppendByteEncoded(word, &encoded);
      EncodeWord(encoded, &out);
    }
  }
  return out;
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
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < word.size();) {
    const size_t len =
        std::min(unicode::Utf8SeqLen(static_cast<uint8_t>(word[offset])), word.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + len == word.size() ? -1 : index + 1, offset, len});
    offset += len;
  }

  std::string key;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int rank = Rank(word.substr(l.offset, l.length), word.substr(r.offset, r.length), &key);
    if (rank >= 0) queue.push({left, right, rank, l.length + r.length});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != b.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = word.substr(symbols[i].offset, symbols[i].length);
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
