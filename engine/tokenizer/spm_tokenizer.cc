// SentencePiece-style tokenization (see spm_tokenizer.h).
//
// Design: the fragment is split into UTF-8 characters held in a doubly linked list of symbols.
// Every adjacent pair whose concatenation is a vocabulary token is queued by that token's score
// (highest first, leftmost on ties). Popping a pair merges it if neither side changed since it
// was queued (checked by length), then queues the new pairs on both sides. What remains are
// vocabulary tokens, or single characters that fall back to byte tokens. Same algorithm and
// tie-breaking as llama.cpp's llm_tokenizer_spm_session.
#include "engine/tokenizer/spm_tokenizer.h"

#include <queue>
#include <string>

#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 '▁'

struct Symbol {
  int prev;
  int next;
  size_t offset;  // bytes into the fragment
  size_t length;  // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t length;  // bytes of left + right when queued
};

struct BigramOrder {  // max-heap: higher score first, then smaller left index
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

std::vector<TokenId> SpmTokenizer::Encode(std::string_view text, bool add_bos,
                                          bool parse_special) const {
  const Vocab& v = vocab();
  std::vector<TokenId> out;
  if (add_bos && v.add_bos()) out.push_back(v.bos_id());
  bool prev_special = true;  // the start of the input counts as "after a special token"
  std::string escaped;
  for (const Vocab::Fragment& f : v.SplitSpecial(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    escaped.clear();
    if (v.add_space_prefix() && prev_special) escaped.append(kSpmSpace);
    for (char c : text.substr(f.offset, f.length)) {
      if (c == ' ') {
        escaped.append(kSpmSpace);
      } else {
        escaped.push_back(c);
      }
    }
    EncodeFragment(escaped, &out);
    prev_special = false;
  }
  return out;
}

void SpmTokenizer::EncodeFragment(std::string_view text, std::vector<TokenId>* out) const {
  const Vocab& v = vocab();
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t len =
        std::min(unicode::Utf8SeqLen(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + len == text.size() ? -1 : index + 1, offset, len});
    offset += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const TokenId id = v.Find(text.substr(symbols[left].offset, length));
    if (id < 0) return;
    queue.push({left, right, v.score(id), length});
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
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    const TokenId id = v.Find(piece);
    if (id >= 0) {
      out->push_back(id);
    } else {
      AppendBytes(piece, out);  // only unmerged characters reach here: merges are tokens
    }
  }
}

void SpmTokenizer::AppendBytes(std::string_view bytes, std::vector<TokenId>* out) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const Vocab& v = vocab();
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    TokenId id = v.Find(std::string_view(name, 6));
    if (id < 0) id = v.Find(std::string_view(&c, 1));  // llama.cpp's fallback: the raw byte
    if (id < 0) id = v.unk_id();                       // llama.cpp would throw here
    if (id >= 0) out->push_back(id);
  }
}

}  // namespace troupe
