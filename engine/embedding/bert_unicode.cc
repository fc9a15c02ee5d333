// BERT character rules: range lookups into the measured tables, Hangul decomposition.
#include "engine/embedding/bert_unicode.h"

#include <algorithm>
#include <iterator>
#include <span>

#include "engine/embedding/bert_unicode_tables.h"
#include "engine/tokenizer/unicode.h"

namespace troupe::bert_unicode {
namespace {

using tables::Range;

// Hangul syllables U+AC00..U+D7A3 decompose as L V [T] (Unicode 3.12, "Conjoining Jamo").
constexpr uint32_t kHangulFirst = 0xAC00;
constexpr uint32_t kHangulLast = 0xD7A3;
constexpr uint32_t kJamoL = 0x1100;
constexpr uint32_t kJamoV = 0x1161;
constexpr uint32_t kJamoT = 0x11A7;
constexpr uint32_t kNumT = 28;
constexpr uint32_t kNumVT = 21 * kNumT;

bool InRanges(std::span<const Range> ranges, uint32_t cp) {
  // The first range starting after cp; the one before it is the only candidate.
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                                   [](uint32_t c, const Range& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

bool IsAsciiPunctuation(uint32_t cp) {
  return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
         (cp >= 0x7B && cp <= 0x7E);
}

}  // namespace

bool IsDropped(uint32_t cp) {
  if (cp < 0x80) return cp < 0x20 ? !(cp == '\t' || cp == '\n' || cp == '\r') : cp == 0x7F;
  return InRanges(tables::kDropped, cp);
}

bool IsWhitespace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return InRanges(tables::kWhitespace, cp);
}

bool IsCjk(uint32_t cp) { return cp >= 0x3400 && InRanges(tables::kCjk, cp); }

bool IsPunctuation(uint32_t cp) {
  if (cp < 0x80) return IsAsciiPunctuation(cp);
  return InRanges(tables::kPunctuation, cp);
}

void AppendFolded(uint32_t cp, std::u32string* out) {
  if (cp < 0x80) {
    out->push_back(cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
    return;
  }
  if (cp >= kHangulFirst && cp <= kHangulLast) {
    const uint32_t s = cp - kHangulFirst;
    out->push_back(kJamoL + s / kNumVT);
    out->push_back(kJamoV + (s % kNumVT) / kNumT);
    if (s % kNumT != 0) out->push_back(kJamoT + s % kNumT);
    return;
  }
  const std::span<const tables::FoldMulti> multi(tables::kFoldMulti);
  const auto m =
      std::lower_bound(multi.begin(), multi.end(), cp,
                       [](const tables::FoldMulti& f, uint32_t c) { return f.from < c; });
  if (m != multi.end() && m->from == cp) {
    for (uint32_t to : m->to) {
      if (to != 0) out->push_back(to);
    }
    return;
  }
  const std::span<const tables::FoldRun> runs(tables::kFoldRuns);
  const auto r = std::upper_bound(runs.begin(), runs.end(), cp,
                                  [](uint32_t c, const tables::FoldRun& f) { return c < f.first; });
  if (r != runs.begin() && cp <= std::prev(r)->last) {
    const tables::FoldRun& run = *std::prev(r);
    out->push_back(run.to + (cp - run.first) * run.step);
    return;
  }
  out->push_back(cp);
}

void AppendNormalized(uint32_t cp, std::u32string* out) {
  if (IsDropped(cp)) return;
  if (IsWhitespace(cp)) {
    out->push_back(U' ');
  } else if (IsCjk(cp)) {
    out->push_back(U' ');
    AppendFolded(cp, out);
    out->push_back(U' ');
  } else {
    AppendFolded(cp, out);
  }
}

std::u32string Normalize(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) AppendNormalized(unicode::DecodeOne(text, &offset), &out);
  return out;
}

}  // namespace troupe::bert_unicode
