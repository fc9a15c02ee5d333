// The greedy pair-merge loop shared by the BPE and SentencePiece tokenizers.
//
// `text` is split into UTF-8 characters held in a doubly linked list of symbols. Every adjacent
// pair that `priority(left, right)` accepts is queued; the highest priority pops first, the
// leftmost pair on ties. A popped pair merges if neither side changed since it was queued
// (checked by length), then the pairs on both sides of the merged symbol are queued. Same loop
// and tie-breaking as llama.cpp's llm_tokenizer_{bpe,spm}_session.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/tokenizer/unicode.h"

namespace troupe {

// Returns the final symbols of `text`, in order; they are views into `text`.
// REQUIRES: `priority(left, right)` returns std::optional<P> for an ordered P: nullopt if the
// adjacent pieces `left` and `right` (views into `text`, left directly before right) never merge.
template <typename PriorityFn>
std::vector<std::string_view> MergeSymbols(std::string_view text, PriorityFn priority) {
  using Priority =
      typename std::invoke_result_t<PriorityFn&, std::string_view, std::string_view>::value_type;
  struct Symbol {
    int prev;
    int next;
    size_t offset;  // bytes into `text`
    size_t length;  // bytes; 0 once merged into its left neighbour
  };
  struct Bigram {
    int left;
    int right;
    Priority priority;
    size_t length;  // bytes of left + right when queued
  };
  struct BigramOrder {  // max-heap: higher priority first, then smaller left index
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };

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
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const std::optional<Priority> p =
        priority(text.substr(l.offset, l.length), text.substr(r.offset, r.length));
    if (p.has_value()) queue.push({left, right, *p, l.length + r.length});
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

  std::vector<std::string_view> pieces;
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    pieces.push_back(text.substr(symbols[i].offset, symbols[i].length));
  }
  return pieces;
}

}  // namespace troupe
