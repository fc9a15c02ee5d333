#include "engine/character/lore_regex.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "re2/re2.h"

namespace troupe {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// JavaScript's \s (WhiteSpace and LineTerminator) as RE2 class items, and its complement for
// \S inside a bracket class, where RE2 cannot negate part of a class.
constexpr char kSpaceItems[] =
    "\\x{9}-\\x{D}\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}\\x{FEFF}";
constexpr char kNonSpaceItems[] =
    "\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}"
    "\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}"
    "\\x{3001}-\\x{FEFE}\\x{FF00}-\\x{10FFFF}";
// JavaScript's '.' without the s flag: anything but a line terminator.
constexpr char kDot[] = "[^\\n\\r\\x{2028}\\x{2029}]";
constexpr char kAnything[] = "(?s:.)";
constexpr char kNothing[] = "[^\\x{0}-\\x{10FFFF}]";

// ---- characters ----

// Decodes the UTF-8 sequence at s[*pos] and advances *pos past it. A byte that does not start
// a valid sequence (cut short, overlong, a surrogate, past U+10FFFF) reads as U+FFFD, advances
// one byte and sets *valid to false.
char32_t DecodeUtf8(std::string_view s, size_t* pos, bool* valid) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  *valid = true;
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  const int len = b0 >= 0xC2 && b0 <= 0xDF ? 2 : b0 >= 0xE0 && b0 <= 0xEF ? 3
                  : b0 >= 0xF0 && b0 <= 0xF4 ? 4 : 0;
  bool ok = len > 0 && *pos + len <= s.size();
  char32_t c = len > 0 ? b0 & (0x7F >> len) : 0;
  for (int k = 1; ok && k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[*pos + k]);
    ok = (b & 0xC0) == 0x80;
    c = (c << 6) | (b & 0x3F);
  }
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};  // by length: no overlongs
  if (!ok || c < kSmallest[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++*pos;
    *valid = false;
    return kReplacement;
  }
  *pos += len;
  return c;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
    return;
  }
  const int len = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  constexpr unsigned char kLead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (int k = len - 1; k >= 0; --k) {
    const unsigned bits = (c >> (6 * k)) & 0x3F;
    out->push_back(static_cast<char>(k == len - 1 ? kLead[len] | (c >> (6 * k)) : 0x80 | bits));
  }
}

// `text` as RE2 should read it: itself when it is valid UTF-8, else a copy in *storage with
// each invalid byte replaced by U+FFFD.
std::string_view ValidUtf8(std::string_view text, std::string* storage) {
  size_t pos = 0;
  bool valid = true;
  while (pos < text.size() && valid) DecodeUtf8(text, &pos, &valid);
  if (valid) return text;
  storage->reserve(text.size() + 16);
  for (pos = 0; pos < text.size();) AppendUtf8(DecodeUtf8(text, &pos, &valid), storage);
  return *storage;
}

bool IsDigit(char32_t c) { return c >= '0' && c <= '9'; }
bool IsHex(char32_t c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAsciiAlpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int HexValue(char32_t c) { return IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

// Code point `c` as an RE2 literal: a letter or digit as itself, anything else as \x{...}, so
// that nothing taken literally from a card is read as RE2 syntax.
void AppendLiteral(char32_t c, std::string* out) {
  if (IsAsciiAlpha(c) || IsDigit(c)) {
    out->push_back(static_cast<char>(c));
  } else {
    absl::StrAppend(out, "\\x{", absl::Hex(static_cast<uint32_t>(c)), "}");
  }
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("regex: ", what));
}

// ---- ECMAScript -> RE2 ----

// An escape or a bracket-class member: a code point, or a class escape (d D w W s S).
struct ClassAtom {
  char32_t c = 0;
  char builtin = 0;
};

// Rewrites an ECMAScript pattern into RE2 syntax with the same yes/no answer on every text,
// one code point at a time: literals are quoted, '.', \s and the odd classes are spelled out,
// every group becomes (?:...), quantifiers are checked and copied. Refuses what RE2 cannot run
// and what JavaScript rejects. Recursion is one level per group, at most kMaxNesting deep.
class Translator {
 public:
  Translator(std::u32string_view pattern, const LoreRegexOptions& options)
      : p_(pattern), options_(options) {}

  absl::StatusOr<std::string> Translate() && {
    if (options_.multiline) out_ = "(?m)";
    TROUPE_RETURN_IF_ERROR(Alternation(0));
    if (!AtEnd()) return Bad("unmatched ')'");
    return std::move(out_);
  }

 private:
  bool AtEnd() const { return i_ >= p_.size(); }
  char32_t Peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }

  absl::Status Alternation(int depth) {
    if (depth > LoreRegex::kMaxNesting) return Bad("groups nested too deeply");
    while (true) {
      while (!AtEnd() && Peek() != '|' && Peek() != ')') TROUPE_RETURN_IF_ERROR(Term(depth));
      if (AtEnd() || Peek() != '|') return absl::OkStatus();
      ++i_;
      out_ += '|';
    }
  }

  // An assertion, or an atom with an optional quantifier.
  absl::Status Term(int depth) {
    const char32_t c = Peek();
    const bool word_assertion = c == '\\' && (Peek(1) == 'b' || Peek(1) == 'B');
    int min, max;
    if (c == '^' || c == '$' || word_assertion) {
      out_ += word_assertion ? (Peek(1) == 'b' ? "\\b" : "\\B") : (c == '^' ? "^" : "$");
      i_ += word_assertion ? 2 : 1;
      if (TryQuantifier(&min, &max)) return Bad("nothing to repeat");
      return absl::OkStatus();
    }
    TROUPE_RETURN_IF_ERROR(Atom(depth));
    if (!TryQuantifier(&min, &max)) return absl::OkStatus();
    if (min > LoreRegex::kMaxRepeat || max > LoreRegex::kMaxRepeat) {
      return Bad("repeat count above 1000");
    }
    if (max >= 0 && min > max) return Bad("numbers out of order in {} quantifier");
    absl::StrAppend(&out_, "{", min, max == min ? "" : ",", max > min ? absl::StrCat(max) : "",
                    "}");
    if (!AtEnd() && Peek() == '?') {  // lazy: the same texts match
      ++i_;
      out_ += '?';
    }
    return absl::OkStatus();
  }

  // Consumes * + ? {n} {n,} {n,m} if present (max -1: unbounded). A '{' that does not form
  // one is left alone, to be read as a literal.
  bool TryQuantifier(int* min, int* max) {
    if (AtEnd()) return false;
    const char32_t c = Peek();
    if (c == '*' || c == '+' || c == '?') {
      ++i_;
      *min = c == '+' ? 1 : 0;
      *max = c == '?' ? 1 : -1;
      return true;
    }
    if (c != '{') return false;
    size_t j = i_ + 1;
    auto number = [&](int* out) {
      const size_t begin = j;
      long long v = 0;
      while (j < p_.size() && IsDigit(p_[j])) {
        v = std::min<long long>(v * 10 + (p_[j++] - '0'), 1 << 30);
      }
      *out = static_cast<int>(v);
      return j > begin;
    };
    if (!number(min)) return false;
    *max = *min;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(max)) *max = -1;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    i_ = j + 1;
    return true;
  }

  absl::Status Atom(int depth) {
    const char32_t c = Peek();
    int min, max;
    if (c == '*' || c == '+' || c == '?') return Bad("nothing to repeat");
    if (c == '{' && TryQuantifier(&min, &max)) return Bad("nothing to repeat");
    if (c == '(') return Group(depth);
    if (c == '[') return Bracket();
    ++i_;
    if (c == '.') {
      out_ += options_.dot_all ? kAnything : kDot;
    } else if (c == '\\') {
      TROUPE_ASSIGN_OR_RETURN(const ClassAtom atom, Escape(/*in_class=*/false));
      if (atom.builtin == 's' || atom.builtin == 'S') {
        absl::StrAppend(&out_, atom.builtin == 's' ? "[" : "[^", kSpaceItems, "]");
      } else if (atom.builtin) {
        absl::StrAppend(&out_, "\\", std::string(1, atom.builtin));
      } else {
        AppendLiteral(atom.c, &out_);
      }
    } else {
      AppendLiteral(c, &out_);  // including a lone ']', '{' or '}' (Annex B)
    }
    return absl::OkStatus();
  }

  absl::Status Group(int depth) {
    ++i_;  // '('
    if (Peek() == '?') {
      const bool lookbehind = Peek(1) == '<' && (Peek(2) == '=' || Peek(2) == '!');
      if (Peek(1) == ':') {
        i_ += 2;
      } else if (Peek(1) == '<' && !lookbehind) {
        i_ += 2;
        while (!AtEnd() && Peek() != '>') ++i_;
        if (AtEnd()) return Bad("unterminated group name");
        ++i_;
      } else if (Peek(1) == '=' || Peek(1) == '!' || lookbehind) {
        return Bad("lookaround groups are not supported");
      } else {
        return Bad("only (?:...) and (?<name>...) groups are supported");
      }
    }
    out_ += "(?:";
    TROUPE_RETURN_IF_ERROR(Alternation(depth + 1));
    if (AtEnd() || Peek() != ')') return Bad("missing ')'");
    ++i_;
    out_ += ')';
    return absl::OkStatus();
  }

  // After a backslash. Outside a class \b and \B never get here (they are assertions).
  absl::StatusOr<ClassAtom> Escape(bool in_class) {
    if (AtEnd()) return Bad("pattern ends with a backslash");
    const char32_t c = p_[i_++];
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        return ClassAtom{0, static_cast<char>(c)};
      case 't':
        return ClassAtom{'\t'};
      case 'n':
        return ClassAtom{'\n'};
      case 'v':
        return ClassAtom{'\v'};
      case 'f':
        return ClassAtom{'\f'};
      case 'r':
        return ClassAtom{'\r'};
      case 'b':
        return ClassAtom{in_class ? U'\b' : U'b'};
      case '0':
        if (IsDigit(Peek())) return Bad("octal escapes are not supported");
        return ClassAtom{0};
      case 'c':
        if (!IsAsciiAlpha(Peek())) return Bad("\\c must be followed by a letter");
        return ClassAtom{p_[i_++] % 32};
      case 'x':
        if (IsHex(Peek()) && IsHex(Peek(1))) {
          const char32_t v = HexValue(p_[i_]) * 16 + HexValue(p_[i_ + 1]);
          i_ += 2;
          return ClassAtom{v};
        }
        return ClassAtom{'x'};
      case 'u':
        return ClassAtom{UnicodeEscape()};
      case 'k':
        if (Peek() == '<') return Bad("backreferences are not supported");
        return ClassAtom{'k'};
      default:
        if (c >= '1' && c <= '9') return Bad("backreferences are not supported");
        return ClassAtom{c};  // \. \* \\ \/ ..., and Annex B identity escapes such as \q
    }
  }

  // After "\u": four hex digits (a surrogate pair becomes one code point), else a literal 'u'.
  char32_t UnicodeEscape() {
    auto hex4 = [&](size_t at) -> int {
      if (at + 4 > p_.size()) return -1;
      int v = 0;
      for (size_t k = at; k < at + 4; ++k) {
        if (!IsHex(p_[k])) return -1;
        v = v * 16 + HexValue(p_[k]);
      }
      return v;
    };
    const int hi = hex4(i_);
    if (hi < 0) return 'u';
    i_ += 4;
    if (hi >= 0xD800 && hi <= 0xDBFF && Peek() == '\\' && Peek(1) == 'u') {
      const int lo = hex4(i_ + 2);
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        i_ += 6;
        return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
      }
    }
    return static_cast<char32_t>(hi);
  }

  absl::Status Bracket() {
    ++i_;  // '['
    const bool negated = Peek() == '^' && !AtEnd();
    if (negated) ++i_;
    if (!AtEnd() && Peek() == ']') {  // [] matches nothing, [^] anything
      ++i_;
      out_ += negated ? kAnything : kNothing;
      return absl::OkStatus();
    }
    std::string items;
    while (true) {
      if (AtEnd()) return Bad("missing ']'");
      if (Peek() == ']') {
        ++i_;
        break;
      }
      TROUPE_ASSIGN_OR_RETURN(const ClassAtom lo, ClassMember());
      if (Peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        TROUPE_ASSIGN_OR_RETURN(const ClassAtom hi, ClassMember());
        if (lo.builtin || hi.builtin) {  // Annex B: [\d-z] is \d, '-', 'z'
          for (const ClassAtom& atom : {lo, ClassAtom{'-'}, hi}) AppendClassItem(atom, &items);
          continue;
        }
        if (lo.c > hi.c) return Bad("range out of order in character class");
        AppendClassItem(lo, &items);
        items += '-';
        AppendClassItem(hi, &items);
        continue;
      }
      AppendClassItem(lo, &items);
    }
    absl::StrAppend(&out_, negated ? "[^" : "[", items, "]");
    return absl::OkStatus();
  }

  absl::StatusOr<ClassAtom> ClassMember() {
    if (Peek() != '\\') return ClassAtom{p_[i_++]};
    ++i_;
    if (Peek() == 'B') return Bad("\\B is not allowed in a character class");
    if (Peek() == '-') return ClassAtom{p_[i_++]};
    return Escape(/*in_class=*/true);
  }

  static void AppendClassItem(const ClassAtom& atom, std::string* items) {
    switch (atom.builtin) {
      case 0:
        absl::StrAppend(items, "\\x{", absl::Hex(static_cast<uint32_t>(atom.c)), "}");
        return;
      case 's':
        absl::StrAppend(items, kSpaceItems);
        return;
      case 'S':
        absl::StrAppend(items, kNonSpaceItems);
        return;
      default:  // d D w W: RE2's are ASCII, as JavaScript's
        absl::StrAppend(items, "\\", std::string(1, atom.builtin));
    }
  }

  std::u32string_view p_;
  size_t i_ = 0;
  const LoreRegexOptions options_;
  std::string out_;
};

}  // namespace

LoreRegex::LoreRegex(std::unique_ptr<re2::RE2> re2) : re2_(std::move(re2)) {}
LoreRegex::LoreRegex(LoreRegex&&) noexcept = default;
LoreRegex& LoreRegex::operator=(LoreRegex&&) noexcept = default;
LoreRegex::~LoreRegex() = default;

absl::StatusOr<LoreRegex> LoreRegex::Compile(std::string_view pattern,
                                             const LoreRegexOptions& options) {
  if (pattern.size() > static_cast<size_t>(kMaxPatternBytes)) {
    return Bad(absl::StrCat("pattern of ", pattern.size(), " bytes exceeds the limit of ",
                            kMaxPatternBytes));
  }
  std::u32string code_points;
  bool valid;
  for (size_t pos = 0; pos < pattern.size();) {
    code_points.push_back(DecodeUtf8(pattern, &pos, &valid));
  }
  TROUPE_ASSIGN_OR_RETURN(std::string translated, Translator(code_points, options).Translate());

  RE2::Options re2_options;  // UTF-8, Perl-like syntax, leftmost-first
  re2_options.set_case_sensitive(!options.case_insensitive);
  re2_options.set_max_mem(kMaxMemBytes);
  re2_options.set_never_capture(true);  // a yes/no search needs no submatches
  re2_options.set_log_errors(false);    // the Status carries the reason
  auto re2 = std::make_unique<re2::RE2>(translated, re2_options);
  if (!re2->ok()) {
    switch (re2->error_code()) {
      case re2::RE2::ErrorRepeatSize:       // nested repeats multiply past 1000
      case re2::RE2::ErrorPatternTooLarge:  // the program outgrew max_mem
        return Bad("pattern too large after expanding repeats");
      default:  // the translation refuses everything else first; RE2 has the last word
        return Bad(absl::StrCat("RE2 refused the pattern: ", re2->error()));
    }
  }
  if (re2->ProgramSize() > kMaxProgramSize) {
    return Bad("pattern too large after expanding repeats");
  }
  return LoreRegex(std::move(re2));
}

absl::StatusOr<LoreRegex> LoreRegex::CompileKey(std::string_view key, bool case_sensitive) {
  LoreRegexOptions options;
  options.case_insensitive = !case_sensitive;
  const size_t close = key.rfind('/');
  if (key.size() >= 2 && key.front() == '/' && close > 0 &&
      key.find_first_not_of("gimsuy", close + 1) == std::string_view::npos) {
    const std::string_view flags = key.substr(close + 1);
    if (flags.find('i') != std::string_view::npos) options.case_insensitive = true;
    options.multiline = flags.find('m') != std::string_view::npos;
    options.dot_all = flags.find('s') != std::string_view::npos;
    key = key.substr(1, close - 1);
  }
  return Compile(key, options);
}

bool LoreRegex::Search(std::string_view text) const {
  std::string storage;
  const std::string_view valid = ValidUtf8(text, &storage);
  return re2::RE2::PartialMatch(re2::StringPiece(valid.data(), valid.size()), *re2_);
}

int LoreRegex::program_size() const { return re2_->ProgramSize(); }

}  // namespace troupe
