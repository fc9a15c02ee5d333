// SentencePiece-style tokenization (see spm_tokenizer.h).
//
// Design: the fragment goes through MergeSymbols (symbol_merge.h), merging adjacent pairs whose
// concatenation is a vocabulary token, by that token's score (highest first, leftmost on ties).
// What remains are vocabulary tokens, or single characters that fall back to byte tokens. Same
// algorithm and tie-breaking as llama.cpp's llm_tokenizer_spm_session.
#include "engine/tokenizer/spm_tokenizer.h"

#include <optional>
#include <string>

#include "engine/tokenizer/symbol_merge.h"

namespace troupe {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 '▁'

}  // namespace

SpmTokenizer::SpmTokenizer(Vocab vocab, SpmOptions options)
    : VocabTokenizer(std::move(vocab)), options_(std::move(options)) {
  ranks_.reserve(options_.merges.size());
  for (size_t i = 0; i < options_.merges.size(); ++i) {
    ranks_.emplace(options_.merges[i], static_cast<int32_t>(i));  // first occurrence wins
  }
}

void SpmTokenizer::EncodeFragments(std::string_view text,
                                   const std::vector<Vocab::Fragment>& fragments,
                                   std::vector<TokenId>* out) const {
  const Vocab& v = vocab();
  bool prev_special = true;  // the start of the input counts as "after a special token"
  std::string escaped;
  for (const Vocab::Fragment& f : fragments) {
    if (f.token >= 0) {
      out->push_back(f.token);
      prev_special = true;
      continue;
    }
    escaped.clear();
    bool prepend = false;
    switch (options_.prepend) {
      case SpmPrepend::kAfterSpecial: prepend = prev_special; break;
      // Metaspace prepends only to text that does not already start with a space.
      case SpmPrepend::kFirst: prepend = f.offset == 0 && text[f.offset] != ' '; break;
      case SpmPrepend::kAlways: prepend = text[f.offset] != ' '; break;
      case SpmPrepend::kNever: break;
    }
    if (v.add_space_prefix() && prepend) escaped.append(kSpmSpace);
    for (char c : text.substr(f.offset, f.length)) {
      if (c == ' ') {
        escaped.append(kSpmSpace);
      } else {
        escaped.push_back(c);
      }
    }
    if (options_.split_words) {
      // Words start at each "▁" (a leading run of other text is a word too).
      size_t start = 0;
      while (start < escaped.size()) {
        size_t next = escaped.find(kSpmSpace, start + 1);
        if (next == std::string::npos) next = escaped.size();
        EncodeFragment(std::string_view(escaped).substr(start, next - start), out);
        start = next;
      }
    } else {
      EncodeFragment(escaped, out);
    }
    prev_special = false;
  }
}

void SpmTokenizer::EncodeFragment(std::string_view text, std::vector<TokenId>* out) const {
  const Vocab& v = vocab();
  std::string key;
  const auto priority = [&](std::string_view left, std::string_view right) -> std::optional<float> {
    if (!ranks_.empty()) {  // tokenizer.json: the pair's rank, lowest first
      key.assign(left);
      key.push_back(' ');
      key.append(right);
      const auto it = ranks_.find(key);
      if (it == ranks_.end()) return std::nullopt;
      return -static_cast<float>(it->second);
    }
    // The pieces are adjacent in `text`, so their concatenation is a view too.
    const TokenId id = v.Find(std::string_view(left.data(), left.size() + right.size()));
    if (id < 0) return std::nullopt;
    return v.score(id);
  };
  for (const std::string_view piece : MergeSymbols(text, priority)) {
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
