// Compact Unicode classifier, UTF-8 codec and the GPT-2 byte map (see unicode.h).
//
// The classifier is a sorted list of range starts, each giving the class of every code point up
// to the next start. It is exact for U+0000..U+02FF and close (checked against Python's
// unicodedata 14.0 for letters, numbers and whitespace) for the blocks that chat text uses.
// Rarer scripts are coarse: Indic blocks U+0980..U+0DFF follow the shared ISCII layout
// (IndicClass), most of the Supplementary Multilingual Plane is treated as letters, and emoji and
// pictographs are kOther. llama.cpp's pre-tokenizer only asks "letter / number / whitespace /
// other" (and "punctuation" for the default regex), so a wrong mark-vs-symbol guess is harmless.
#include "engine/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace troupe::unicode {
namespace {

using C = CharClass;
constexpr C O = C::kOther, L = C::kLetter, N = C::kNumber, W = C::kWhitespace, P = C::kPunctuation,
            M = C::kMark;

struct RangeStart {
  uint32_t first;
  CharClass cls;
};

// Sorted by `first`; the class holds until the next entry's `first`.
// clang-format off
constexpr RangeStart kRanges[] = {
    // ---- ASCII ----
    {0x0000, O}, {0x0009, W}, {0x000E, O}, {0x0020, W}, {0x0021, P}, {0x0024, O}, {0x0025, P},
    {0x002B, O}, {0x002C, P}, {0x0030, N}, {0x003A, P}, {0x003C, O}, {0x003F, P}, {0x0041, L},
    {0x005B, P}, {0x005E, O}, {0x005F, P}, {0x0060, O}, {0x0061, L}, {0x007B, P}, {0x007C, O},
    {0x007D, P}, {0x007E, O},
    // ---- Latin-1 ----
    {0x0085, W}, {0x0086, O}, {0x00A0, W}, {0x00A1, P}, {0x00A2, O}, {0x00A7, P}, {0x00A8, O},
    {0x00AA, L}, {0x00AB, P}, {0x00AC, O}, {0x00B2, N}, {0x00B4, O}, {0x00B5, L}, {0x00B6, P},
    {0x00B8, O}, {0x00B9, N}, {0x00BA, L}, {0x00BB, P}, {0x00BC, N}, {0x00BF, P}, {0x00C0, L},
    {0x00D7, O}, {0x00D8, L}, {0x00F7, O}, {0x00F8, L},
    // ---- Latin Extended-A/B, IPA, spacing modifiers ----
    {0x02C2, O}, {0x02C6, L}, {0x02D2, O}, {0x02E0, L}, {0x02E5, O}, {0x02EC, L}, {0x02ED, O},
    {0x02EE, L}, {0x02EF, O}, {0x0300, M},
    // ---- Greek, Cyrillic ----
    {0x0370, L}, {0x0375, O}, {0x0376, L}, {0x0378, O}, {0x037A, L}, {0x037E, P}, {0x037F, L},
    {0x0380, O}, {0x0386, L}, {0x0387, P}, {0x0388, L}, {0x03F6, O}, {0x03F7, L}, {0x0482, O},
    {0x0483, M}, {0x048A, L},
    // ---- Armenian, Hebrew ----
    {0x0530, O}, {0x0531, L}, {0x0557, O}, {0x0559, L}, {0x055A, P}, {0x0560, L}, {0x0589, P},
    {0x058B, O}, {0x0591, M}, {0x05BE, P}, {0x05BF, M}, {0x05C0, P}, {0x05C1, M}, {0x05C3, P},
    {0x05C4, M}, {0x05C6, P}, {0x05C7, M}, {0x05C8, O}, {0x05D0, L}, {0x05EB, O}, {0x05EF, L},
    {0x05F3, P}, {0x05F5, O},
    // ---- Arabic ----
    {0x0609, P}, {0x060B, O}, {0x060C, P}, {0x060E, O}, {0x0610, M}, {0x061B, P}, {0x061C, O},
    {0x061D, P}, {0x0620, L}, {0x064B, M}, {0x0660, N}, {0x066A, P}, {0x066E, L}, {0x0670, M},
    {0x0671, L}, {0x06D4, P}, {0x06D5, L}, {0x06D6, M}, {0x06DD, O}, {0x06DF, M}, {0x06E5, L},
    {0x06E7, M}, {0x06E9, O}, {0x06EA, M}, {0x06EE, L}, {0x06F0, N}, {0x06FA, L}, {0x06FD, O},
    {0x06FF, L}, {0x0700, P}, {0x070E, O}, {0x0710, L}, {0x08CA, M}, {0x08E2, O}, {0x08E3, M},
    // ---- Devanagari (exact); U+0980..U+0DFF handled by IndicClass ----
    {0x0904, L}, {0x093A, M}, {0x093D, L}, {0x093E, M}, {0x0950, L}, {0x0951, M}, {0x0958, L},
    {0x0962, M}, {0x0964, P}, {0x0966, N}, {0x0970, P}, {0x0971, L},
    // ---- Thai, Lao ----
    {0x0E00, O}, {0x0E01, L}, {0x0E31, M}, {0x0E32, L}, {0x0E34, M}, {0x0E3B, O}, {0x0E40, L},
    {0x0E47, M}, {0x0E4F, P}, {0x0E50, N}, {0x0E5A, P}, {0x0E5C, O}, {0x0E81, L}, {0x0EB1, M},
    {0x0EB2, L}, {0x0EB4, M}, {0x0EBD, L}, {0x0EC8, M}, {0x0ECF, O}, {0x0ED0, N}, {0x0EDA, L},
    // ---- Tibetan, Myanmar, Georgian, Hangul Jamo, Ethiopic, Cherokee, UCAS, Ogham, Runic ----
    {0x0F00, L}, {0x0F20, N}, {0x0F34, L}, {0x1000, L}, {0x102B, M}, {0x103F, L}, {0x1040, N},
    {0x104A, P}, {0x1050, L}, {0x10FB, P}, {0x10FC, L}, {0x1360, P}, {0x1369, N}, {0x137D, L},
    {0x1400, P}, {0x1401, L}, {0x166D, O}, {0x166E, P}, {0x166F, L}, {0x1680, W}, {0x1681, L},
    {0x169B, P}, {0x169D, O}, {0x16A0, L}, {0x16EB, P}, {0x16EE, N}, {0x16F1, L},
    // ---- Khmer, Mongolian and other scripts up to Latin Extended Additional ----
    {0x17B4, M}, {0x17D4, P}, {0x17D7, L}, {0x17D8, P}, {0x17DB, O}, {0x17DC, L}, {0x17DD, M},
    {0x17DE, O}, {0x17E0, N}, {0x17EA, O}, {0x1800, P}, {0x180B, M}, {0x1810, N}, {0x181A, O},
    {0x1820, L}, {0x1AB0, M}, {0x1B00, L}, {0x1DC0, M}, {0x1E00, L},
    // ---- Greek Extended ----
    {0x1FBD, O}, {0x1FBE, L}, {0x1FBF, O}, {0x1FC2, L}, {0x1FCD, O}, {0x1FD0, L}, {0x1FDD, O},
    {0x1FE0, L}, {0x1FED, O}, {0x1FF0, L}, {0x1FFD, O},
    // ---- General Punctuation, super/subscripts, currency ----
    {0x2000, W}, {0x200B, O}, {0x2010, P}, {0x2028, W}, {0x202A, O}, {0x202F, W}, {0x2030, P},
    {0x2044, O}, {0x2045, P}, {0x2052, O}, {0x2053, P}, {0x205F, W}, {0x2060, O}, {0x2070, N},
    {0x2071, L}, {0x2072, O}, {0x2074, N}, {0x207A, O}, {0x207D, P}, {0x207F, L}, {0x2080, N},
    {0x208A, O}, {0x208D, P}, {0x208F, O}, {0x2090, L}, {0x209D, O}, {0x20D0, M}, {0x2100, O},
    // ---- Letterlike symbols, number forms ----
    {0x2102, L}, {0x2103, O}, {0x2107, L}, {0x2108, O}, {0x210A, L}, {0x2114, O}, {0x2115, L},
    {0x2116, O}, {0x2119, L}, {0x211E, O}, {0x2124, L}, {0x2125, O}, {0x2126, L}, {0x2127, O},
    {0x2128, L}, {0x2129, O}, {0x212A, L}, {0x212E, O}, {0x212F, L}, {0x213A, O}, {0x213C, L},
    {0x2140, O}, {0x2145, L}, {0x214A, O}, {0x214E, L}, {0x214F, O}, {0x2150, N}, {0x2183, L},
    {0x2185, N}, {0x218A, O},
    // ---- Technical, enclosed alphanumerics, dingbats, math brackets ----
    {0x2308, P}, {0x230C, O}, {0x2329, P}, {0x232B, O}, {0x2460, N}, {0x249C, O}, {0x24EA, N},
    {0x2500, O}, {0x2768, P}, {0x2776, N}, {0x2794, O}, {0x27C5, P}, {0x27C7, O}, {0x27E6, P},
    {0x27F0, O}, {0x2983, P}, {0x2999, O}, {0x29D8, P}, {0x29DC, O}, {0x29FC, P}, {0x29FE, O},
    // ---- Glagolitic, Latin Extended-C, Coptic, Georgian Supplement, Tifinagh, Ethiopic Ext ----
    {0x2C00, L}, {0x2CE5, O}, {0x2CEB, L}, {0x2CEF, M}, {0x2CF2, L}, {0x2CF4, O}, {0x2CF9, P},
    {0x2CFD, N}, {0x2CFE, P}, {0x2D00, L}, {0x2D70, P}, {0x2D71, O}, {0x2D7F, M}, {0x2D80, L},
    {0x2DE0, M}, {0x2E00, P}, {0x2E2F, L}, {0x2E30, P}, {0x2E80, O},
    // ---- CJK symbols and punctuation, kana, Bopomofo, compatibility Jamo, enclosed CJK ----
    {0x3000, W}, {0x3001, P}, {0x3004, O}, {0x3005, L}, {0x3007, N}, {0x3008, P}, {0x3012, O},
    {0x3014, P}, {0x3020, O}, {0x3021, N}, {0x302A, M}, {0x3030, P}, {0x3031, L}, {0x3036, O},
    {0x3038, N}, {0x303B, L}, {0x303D, P}, {0x303E, O}, {0x3041, L}, {0x3097, O}, {0x3099, M},
    {0x309B, O}, {0x309D, L}, {0x30A0, P}, {0x30A1, L}, {0x30FB, P}, {0x30FC, L}, {0x3190, O},
    {0x3192, N}, {0x3196, O}, {0x31A0, L}, {0x31C0, O}, {0x31F0, L}, {0x3200, O}, {0x3220, N},
    {0x322A, O}, {0x3248, N}, {0x3250, O}, {0x3251, N}, {0x3260, O}, {0x3280, N}, {0x328A, O},
    {0x32B1, N}, {0x32C0, O},
    // ---- CJK ideographs, Yi, Lisu, Vai, Cyrillic Ext-B, Bamum, Latin Ext-D, Hangul ----
    {0x3400, L}, {0x4DC0, O}, {0x4E00, L}, {0xA490, O}, {0xA4D0, L}, {0xA4FE, P}, {0xA500, L},
    {0xA60D, P}, {0xA610, L}, {0xA620, N}, {0xA62A, L}, {0xA66F, M}, {0xA673, P}, {0xA674, M},
    {0xA67E, P}, {0xA67F, L}, {0xA69E, M}, {0xA6A0, L}, {0xA6E6, N}, {0xA6F0, M}, {0xA6F2, P},
    {0xA6F8, O}, {0xA717, L}, {0xA720, O}, {0xA722, L}, {0xA789, O}, {0xA78B, L}, {0xA830, O},
    {0xA840, L}, {0xA874, P}, {0xA878, L}, {0xD7A4, O}, {0xD7B0, L}, {0xD800, O},
    // ---- compatibility ideographs, presentation forms, variation selectors, fullwidth ----
    {0xF900, L}, {0xFB1E, M}, {0xFB1F, L}, {0xFB29, O}, {0xFB2A, L}, {0xFD3E, P}, {0xFD40, L},
    {0xFDFC, O}, {0xFE00, M}, {0xFE10, P}, {0xFE1A, O}, {0xFE20, M}, {0xFE30, P}, {0xFE62, O},
    {0xFE63, P}, {0xFE64, O}, {0xFE68, P}, {0xFE69, O}, {0xFE6A, P}, {0xFE6C, O}, {0xFE70, L},
    {0xFEFF, O}, {0xFF01, P}, {0xFF04, O}, {0xFF05, P}, {0xFF0B, O}, {0xFF0C, P}, {0xFF10, N},
    {0xFF1A, P}, {0xFF1C, O}, {0xFF1F, P}, {0xFF21, L}, {0xFF3B, P}, {0xFF3E, O}, {0xFF3F, P},
    {0xFF40, O}, {0xFF41, L}, {0xFF5B, P}, {0xFF5C, O}, {0xFF5D, P}, {0xFF5E, O}, {0xFF5F, P},
    {0xFF66, L}, {0xFFE0, O},
    // ---- Supplementary planes (coarse) ----
    {0x10000, L}, {0x10100, P}, {0x10103, O}, {0x10107, N}, {0x10134, O}, {0x10140, N},
    {0x10179, O}, {0x10280, L}, {0x1D000, O}, {0x1D2E0, N}, {0x1D300, O}, {0x1D360, N},
    {0x1D379, O}, {0x1D400, L}, {0x1D7CE, N}, {0x1D800, O}, {0x1DF00, L}, {0x1F000, O},
    {0x1F100, N}, {0x1F10D, O},
    {0x1FBF0, N}, {0x1FBFA, O}, {0x20000, L}, {0x31350, O}, {0xE0100, M}, {0xE01F0, O},
};
// clang-format on

// Indic blocks U+0980..U+0DFF share the ISCII-derived layout: vowel signs and viramas at the same
// offsets in each 128-code-point block, digits at 0x66..0x6F.
CharClass IndicClass(uint32_t cpt) {
  const uint32_t off = cpt & 0x7F;
  if (off <= 0x03) return M;
  if (off <= 0x39) return L;
  if (off <= 0x3C) return M;
  if (off == 0x3D) return L;
  if (off <= 0x4D) return M;
  if (off <= 0x50) return L;
  if (off <= 0x57) return M;
  if (off <= 0x61) return L;
  if (off <= 0x63) return M;
  if (off <= 0x65) return P;
  if (off <= 0x6F) return N;
  return L;
}

CharClass LookupRange(uint32_t cpt) {
  const RangeStart* end = std::end(kRanges);
  const RangeStart* it = std::upper_bound(
      std::begin(kRanges), end, cpt, [](uint32_t c, const RangeStart& r) { return c < r.first; });
  return (it - 1)->cls;  // kRanges[0].first == 0, so it - 1 is valid
}

// Latin-1 is hot (every ASCII byte of every prompt): a 256-entry table built from kRanges.
const std::array<CharClass, 256>& Latin1Table() {
  static const std::array<CharClass, 256> table = [] {
    std::array<CharClass, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) t[c] = LookupRange(c);
    return t;
  }();
  return table;
}

}  // namespace

CharClass Classify(uint32_t cpt) {
  if (cpt < 256) return Latin1Table()[cpt];
  if (cpt > 0x10FFFF) return O;
  if (cpt >= 0x0980 && cpt < 0x0E00) return IndicClass(cpt);
  return LookupRange(cpt);
}

uint32_t DecodeOne(std::string_view text, size_t* offset) {
  const size_t i = *offset;
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[i + k]); };
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) {
    *offset = i + 1;
    return b0;
  }
  size_t len;
  uint32_t cpt, min_value;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cpt = b0 & 0x1F, min_value = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cpt = b0 & 0x0F, min_value = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cpt = b0 & 0x07, min_value = 0x10000;
  } else {
    *offset = i + 1;
    return 0xFFFD;
  }
  if (i + len > text.size()) {
    *offset = i + 1;
    return 0xFFFD;
  }
  for (size_t k = 1; k < len; ++k) {
    if ((byte(k) & 0xC0) != 0x80) {
      *offset = i + 1;
      return 0xFFFD;
    }
    cpt = (cpt << 6) | (byte(k) & 0x3F);
  }
  if (cpt < min_value || cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) {
    *offset = i + 1;
    return 0xFFFD;
  }
  *offset = i + len;
  return cpt;
}

std::vector<uint32_t> DecodeUtf8(std::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) cpts.push_back(DecodeOne(text, &offset));
  return cpts;
}

void AppendUtf8(uint32_t cpt, std::string* out) {
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

size_t IncompleteSuffixLen(std::string_view text) {
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  const size_t n = text.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const uint8_t b = static_cast<uint8_t>(text[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need;
    if (b < 0x80) {
      need = 1;
    } else if ((b & 0xE0) == 0xC0) {
      need = 2;
    } else if ((b & 0xF0) == 0xE0) {
      need = 3;
    } else if ((b & 0xF8) == 0xF0) {
      need = 4;
    } else {
      return 0;  // invalid lead: not a prefix of anything, nothing to wait for
    }
    return back < need ? back : 0;
  }
  return 0;  // 4+ continuation bytes in a row: invalid, nothing to wait for
}

// ---- GPT-2 byte map ----

namespace {
struct ByteMaps {
  std::array<uint32_t, 256> byte_to_cpt{};
  std::array<int16_t, 324> cpt_to_byte{};  // image of the map lies below U+0144
};

const ByteMaps& GetByteMaps() {
  static const ByteMaps maps = [] {
    ByteMaps m;
    m.cpt_to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      m.byte_to_cpt[b] = printable ? b : next++;
      m.cpt_to_byte[m.byte_to_cpt[b]] = static_cast<int16_t>(b);
    }
    return m;
  }();
  return maps;
}
}  // namespace

uint32_t ByteToCodepoint(uint8_t byte) { return GetByteMaps().byte_to_cpt[byte]; }

int CodepointToByte(uint32_t cpt) {
  const auto& table = GetByteMaps().cpt_to_byte;
  return cpt < table.size() ? table[cpt] : -1;
}

void AppendByteEncoded(std::string_view bytes, std::string* out) {
  for (char c : bytes) AppendUtf8(ByteToCodepoint(static_cast<uint8_t>(c)), out);
}

}  // namespace troupe::unicode
