// ToNfc over the tables of nfc_tables.h; Hangul syllables by the Unicode formula.
#include "engine/tokenizer/nfc.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/tokenizer/nfc_tables.h"
#include "engine/tokenizer/unicode.h"

namespace troupe::unicode {
namespace {

namespace t = nfc_tables;

constexpr uint32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr uint32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t CombiningClass(uint32_t cp) {
  const auto* end = std::end(t::kCombiningClass);
  const auto* it = std::upper_bound(std::begin(t::kCombiningClass), end, cp,
                                    [](uint32_t c, const t::ClassRun& r) { return c < r.first; });
  if (it == std::begin(t::kCombiningClass)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void Decompose(uint32_t cp, std::vector<uint32_t>* out) {
  if (cp >= kHangulS && cp < kHangulS + kSCount) {
    const uint32_t i = cp - kHangulS;
    out->push_back(kHangulL + i / kNCount);
    out->push_back(kHangulV + (i % kNCount) / kTCount);
    if (i % kTCount != 0) out->push_back(kHangulT + i % kTCount);
    return;
  }
  const auto* end = std::end(t::kDecompositions);
  const auto* it = std::lower_bound(std::begin(t::kDecompositions), end, cp,
                                    [](const t::Decomposition& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out->push_back(cp);
    return;
  }
  out->insert(out->end(), t::kDecompositionData + it->offset,
              t::kDecompositionData + it->offset + it->length);
}

// The primary composite of (first, second), or 0.
uint32_t Compose(uint32_t first, uint32_t second) {
  if (first >= kHangulL && first < kHangulL + kLCount && second >= kHangulV &&
      second < kHangulV + kVCount) {
    return kHangulS + ((first - kHangulL) * kVCount + (second - kHangulV)) * kTCount;
  }
  if (first >= kHangulS && first < kHangulS + kSCount && (first - kHangulS) % kTCount == 0 &&
      second > kHangulT && second < kHangulT + kTCount) {
    return first + (second - kHangulT);
  }
  const auto* end = std::end(t::kCompositions);
  const auto* it = std::lower_bound(
      std::begin(t::kCompositions), end, std::pair{first, second},
      [](const t::Composition& c, const std::pair<uint32_t, uint32_t>& key) {
        return c.first != key.first ? c.first < key.first : c.second < key.second;
      });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

}  // namespace

std::string ToNfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) {
        return static_cast<uint8_t>(c) < 0x80;  // ASCII: below kStableBelow, one byte each
      })) {
    return std::string(text);
  }
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (uint32_t cp : DecodeUtf8(text)) Decompose(cp, &cps);
  // Canonical order: each run of non-starters stably sorted by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (CombiningClass(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && CombiningClass(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](uint32_t a, uint32_t b) {
      return CombiningClass(a) < CombiningClass(b);
    });
    i = j;
  }
  // Composition: a character joins the last starter unless a character between them is a
  // starter or has a class at least its own (marks are in class order, so the last one decides).
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;
  int last_class = -1;
  for (uint32_t cp : cps) {
    const int cls = CombiningClass(cp);
    const bool adjacent = starter >= 0 && static_cast<size_t>(starter) + 1 == out.size();
    if (starter >= 0 && (last_class < cls || adjacent)) {
      if (const uint32_t composite = Compose(out[starter], cp); composite != 0) {
        out[starter] = composite;
        continue;
      }
    }
    if (cls == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    last_class = cls;
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (uint32_t cp : out) AppendUtf8(cp, &result);
  return result;
}

}  // namespace troupe::unicode
