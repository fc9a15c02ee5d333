// Hand-written pre-tokenizer regexes (see pretokenizer.h).
//
// Design: the text is decoded to code points once and classified once; a split is a list of
// piece lengths (in code points) that covers the text. Each stage re-splits every piece of the
// previous stage independently, which is how llama.cpp chains its regexes (unicode_regex_split):
// text between matches becomes a piece of its own, and no match crosses a piece boundary.
// The GPT-2 and Llama-3 splitters follow llama.cpp's hand-written versions of those regexes
// (unicode_regex_split_custom_gpt2 / _llama3), including their longest-match choices.
#include "engine/tokenizer/pretokenizer.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

using unicode::CharClass;
using Pieces = std::vector<size_t>;  // piece lengths in code points

struct Decoded {
  std::vector<uint32_t> cpts;
  std::vector<CharClass> cls;
};

// Cursor over one piece [begin, end) with the class tests the regexes need. Positions at or past
// `end` match nothing (llama.cpp's OUT_OF_RANGE).
class PieceView {
 public:
  PieceView(const Decoded& d, size_t begin, size_t end) : d_(d), begin_(begin), end_(end) {}
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  uint32_t cpt(size_t p) const { return p < end_ ? d_.cpts[p] : UINT32_MAX; }
  bool letter(size_t p) const { return p < end_ && d_.cls[p] == CharClass::kLetter; }
  bool number(size_t p) const { return p < end_ && d_.cls[p] == CharClass::kNumber; }
  bool space(size_t p) const { return p < end_ && d_.cls[p] == CharClass::kWhitespace; }
  // [^\s\p{L}\p{N}]
  bool other(size_t p) const { return p < end_ && !letter(p) && !number(p) && !space(p); }

 private:
  const Decoded& d_;
  size_t begin_, end_;
};

// Appends piece lengths while walking a piece; Emit(end) closes the piece [prev_end, end).
class Emitter {
 public:
  Emitter(size_t begin, Pieces* out) : prev_end_(begin), out_(out) {}
  void Emit(size_t end) {
    if (end > prev_end_) out_->push_back(end - prev_end_);
    prev_end_ = end;
  }

 private:
  size_t prev_end_;
  Pieces* out_;
};

template <typename SplitPiece>
Pieces ForEachPiece(const Decoded& d, const Pieces& in, SplitPiece split) {
  Pieces out;
  out.reserve(in.size() * 2);
  size_t start = 0;
  for (size_t len : in) {
    split(PieceView(d, start, start + len), &out);
    start += len;
  }
  return out;
}

char ToLowerAscii(uint32_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) starting at `pos`, or 0.
size_t ContractionLen(const PieceView& v, size_t pos, bool ignore_case) {
  if (v.cpt(pos) != '\'' || pos + 1 >= v.end()) return 0;
  const auto lower = [&](size_t p) -> char {
    const uint32_t c = v.cpt(p);
    if (c > 0x7F) return 0;
    return ignore_case ? ToLowerAscii(c) : static_cast<char>(c);
  };
  const char c1 = lower(pos + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= v.end()) return 0;
  const char c2 = lower(pos + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// Whitespace handling shared by GPT-2 and Llama-3: \s+(?!\S) then \s+. Returns the new position
// or `pos` if there is no whitespace at `pos`.
size_t TrailingSpaceRun(const PieceView& v, size_t pos) {
  size_t n = 0;
  while (v.space(pos + n)) ++n;
  if (n > 1 && pos + n < v.end()) return pos + n - 1;  // leave one space for the next word
  return pos + n;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
void SplitGpt2(const PieceView& v, Pieces* out) {
  Emitter emit(v.begin(), out);
  size_t pos = v.begin();
  while (pos < v.end()) {
    if (size_t n = ContractionLen(v, pos, /*ignore_case=*/false)) {
      emit.Emit(pos += n);
      continue;
    }
    const size_t q = v.cpt(pos) == ' ' ? pos + 1 : pos;  // optional leading space
    if (v.letter(q) || v.number(q) || v.other(q)) {
      bool (PieceView::*same)(size_t) const = v.letter(q)   ? &PieceView::letter
                                              : v.number(q) ? &PieceView::number
                                                            : &PieceView::other;
      pos = q;
      while ((v.*same)(pos)) ++pos;
      emit.Emit(pos);
      continue;
    }
    const size_t next = TrailingSpaceRun(v, pos);
    pos = next > pos ? next : pos + 1;
    emit.Emit(pos);
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void SplitLlama3(const PieceView& v, size_t max_digits, Pieces* out) {
  Emitter emit(v.begin(), out);
  const auto is_crlf = [&](size_t p) { return v.cpt(p) == '\r' || v.cpt(p) == '\n'; };
  size_t pos = v.begin();
  while (pos < v.end()) {
    if (size_t n = ContractionLen(v, pos, /*ignore_case=*/true)) {
      emit.Emit(pos += n);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!is_crlf(pos) && !v.number(pos) && (v.letter(pos) || v.letter(pos + 1))) {
      ++pos;
      while (v.letter(pos)) ++pos;
      emit.Emit(pos);
      continue;
    }
    // \p{N}{1,max_digits}
    if (v.number(pos)) {
      size_t run = 0;
      while (v.number(pos) && run < max_digits) ++pos, ++run;
      emit.Emit(pos);
      continue;
    }
    // ' '?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t q = v.cpt(pos) == ' ' ? pos + 1 : pos;
    if (v.other(q)) {
      pos = q;
      while (v.other(pos)) ++pos;
      while (is_crlf(pos)) ++pos;
      emit.Emit(pos);
      continue;
    }
    // \s*[\r\n]+ : up to and including the last CR/LF of the whitespace run
    size_t n = 0, last_crlf_end = 0;
    while (v.space(pos + n)) {
      if (is_crlf(pos + n)) last_crlf_end = pos + n + 1;
      ++n;
    }
    if (last_crlf_end > 0) {
      emit.Emit(pos = last_crlf_end);
      continue;
    }
    const size_t next = TrailingSpaceRun(v, pos);
    pos = next > pos ? next : pos + 1;
    emit.Emit(pos);
  }
}

// Every code point with pred(class, cpt) becomes a piece of its own (isolated = true), or every
// maximal run of them does (isolated = false); text between becomes pieces too.
template <typename Pred>
void SplitMatching(const PieceView& v, const Decoded& d, Pred pred, bool isolated, Pieces* out) {
  Emitter emit(v.begin(), out);
  size_t pos = v.begin();
  while (pos < v.end()) {
    if (!pred(d.cls[pos], d.cpts[pos])) {
      ++pos;
      continue;
    }
    emit.Emit(pos);
    ++pos;
    if (!isolated) {
      while (pos < v.end() && pred(d.cls[pos], d.cpts[pos])) ++pos;
    }
    emit.Emit(pos);
  }
  emit.Emit(v.end());
}

// [0-9][0-9][0-9]: leftmost non-overlapping triples of ASCII digits.
void SplitDigitTriples(const PieceView& v, Pieces* out) {
  Emitter emit(v.begin(), out);
  const auto digit = [&](size_t p) { return v.cpt(p) >= '0' && v.cpt(p) <= '9'; };
  size_t pos = v.begin();
  while (pos < v.end()) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      emit.Emit(pos);
      emit.Emit(pos += 3);
    } else {
      ++pos;
    }
  }
  emit.Emit(v.end());
}

bool IsDefaultPunct(CharClass cls, uint32_t cpt) {
  if (cls == CharClass::kPunctuation) return true;
  switch (cpt) {
    case '$':
    case '+':
    case '<':
    case '=':
    case '>':
    case '^':
    case '~':
    case '|':
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<PreTokenizerConfig> PreTokenizerFromName(std::string_view pre) {
  PreTokenizerConfig config;
  if (pre.empty() || pre == "default") {
    config.kind = PreTokenizerKind::kDefault;
  } else if (pre == "gpt-2" || pre == "phi-2" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    config.kind = PreTokenizerKind::kGpt2;
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" ||
             pre == "codeshell" || pre == "exaone" || pre == "minerva-7b") {
    config.kind = PreTokenizerKind::kDigitsThenGpt2;
  } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
             pre == "pixtral") {
    config.kind = PreTokenizerKind::kLlama3;
    config.ignore_merges = true;
    config.default_add_bos = true;
  } else if (pre == "dbrx" || pre == "smaug-bpe") {
    config.kind = PreTokenizerKind::kLlama3;
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2" || pre == "megrez") {
    config.kind = PreTokenizerKind::kQwen2;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported tokenizer.ggml.pre '", std::string(pre), "'"));
  }
  return config;
}

std::vector<std::string> PreTokenize(PreTokenizerKind kind, std::string_view text) {
  Decoded d;
  d.cpts = unicode::DecodeUtf8(text);
  d.cls.reserve(d.cpts.size());
  for (uint32_t c : d.cpts) d.cls.push_back(unicode::Classify(c));

  Pieces pieces;
  if (!d.cpts.empty()) pieces.push_back(d.cpts.size());
  const auto gpt2 = [](const PieceView& v, Pieces* out) { SplitGpt2(v, out); };
  const auto is_number = [](CharClass cls, uint32_t) { return cls == CharClass::kNumber; };
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      pieces = ForEachPiece(d, pieces, gpt2);
      break;
    case PreTokenizerKind::kDigitsThenGpt2:
      pieces = ForEachPiece(d, pieces, [&](const PieceView& v, Pieces* out) {
        SplitMatching(v, d, is_number, /*isolated=*/true, out);
      });
      pieces = ForEachPiece(d, pieces, gpt2);
      break;
    case PreTokenizerKind::kLlama3:
    case PreTokenizerKind::kQwen2: {
      const size_t max_digits = kind == PreTokenizerKind::kLlama3 ? 3 : 1;
      pieces = ForEachPiece(
          d, pieces, [&](const PieceView& v, Pieces* out) { SplitLlama3(v, max_digits, out); });
      break;
    }
    case PreTokenizerKind::kDefault:
      pieces = ForEachPiece(d, pieces, [&](const PieceView& v, Pieces* out) {
        SplitMatching(v, d, IsDefaultPunct, /*isolated=*/false, out);
      });
      pieces = ForEachPiece(d, pieces, gpt2);
      pieces = ForEachPiece(d, pieces, [&](const PieceView& v, Pieces* out) {
        SplitMatching(v, d, is_number, /*isolated=*/false, out);
      });
      pieces = ForEachPiece(d, pieces, SplitDigitTriples);
      break;
  }

  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    std::string& w = words.emplace_back();
    for (size_t i = start; i < start + len; ++i) unicode::AppendUtf8(d.cpts[i], &w);
    start += len;
  }
  return words;
}

}  // namespace troupe
