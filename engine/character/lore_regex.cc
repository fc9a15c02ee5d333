#include "engine/character/lore_regex.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace troupe {
namespace {

using Class = LoreRegex::Class;
using Inst = LoreRegex::Inst;

enum AssertKind { kBol, kEol, kWordBoundary, kNotWordBoundary };

constexpr int kMaxRepeat = 1000;  // largest n or m in {n,m}
constexpr char32_t kReplacement = 0xFFFD;

// ---- characters ----

// Decodes the UTF-8 code point at s[*pos] and advances *pos. A byte that does not start a valid
// sequence reads as U+FFFD and advances one byte.
char32_t DecodeUtf8(std::string_view s, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || *pos + len > s.size()) {
    ++*pos;
    return len == 1 ? b0 : kReplacement;
  }
  char32_t c = len == 1 ? b0 : b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[*pos + k]);
    if ((b & 0xC0) != 0x80) {
      ++*pos;
      return kReplacement;
    }
    c = (c << 6) | (b & 0x3F);
  }
  *pos += len;
  return c;
}

std::u32string DecodeAll(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(DecodeUtf8(s, &pos));
  return out;
}

bool IsLineTerminator(char32_t c) { return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029; }
bool IsDigit(char32_t c) { return c >= '0' && c <= '9'; }
bool IsHex(char32_t c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAsciiAlpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsWord(char32_t c) { return IsAsciiAlpha(c) || IsDigit(c) || c == '_'; }
bool IsSpace(char32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000 || c == 0xFEFF;
}
int HexValue(char32_t c) { return IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

bool BuiltinMatches(char builtin, char32_t c) {
  switch (builtin) {
    case 'd':
      return IsDigit(c);
    case 'D':
      return !IsDigit(c);
    case 'w':
      return IsWord(c);
    case 'W':
      return !IsWord(c);
    case 's':
      return IsSpace(c);
    default:
      return !IsSpace(c);  // 'S'
  }
}

Class Literal(char32_t c) { return Class{{{c, c, 0}}, false}; }
Class Builtin(char b) { return Class{{{0, 0, b}}, false}; }

// ---- parser: pattern -> syntax tree ----

struct Node {
  enum Kind { kEmpty, kClassNode, kAssertNode, kConcat, kAlt, kRepeat } kind;
  int value = 0;         // kClassNode: class index; kAssertNode: AssertKind
  int min = 0, max = 0;  // kRepeat; max -1 = unbounded
  std::vector<int> children;
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("regex: ", what));
}

class Parser {
 public:
  Parser(std::u32string_view pattern, bool dot_all, std::vector<Class>* classes)
      : p_(pattern), dot_all_(dot_all), classes_(classes) {}

  // Returns the root node; nodes() holds the tree.
  absl::StatusOr<int> Parse() {
    absl::StatusOr<int> root = ParseAlternation(0);
    if (root.ok() && i_ < p_.size()) return Bad("unmatched ')'");
    return root;
  }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  bool AtEnd() const { return i_ >= p_.size(); }
  char32_t Peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }
  int Add(Node node) {
    nodes_.push_back(std::move(node));
    return static_cast<int>(nodes_.size()) - 1;
  }
  int AddClass(Class cls) {
    classes_->push_back(std::move(cls));
    return Add(Node{Node::kClassNode, static_cast<int>(classes_->size()) - 1, 0, 0, {}});
  }

  absl::StatusOr<int> ParseAlternation(int depth) {
    if (depth > LoreRegex::kMaxNesting) return Bad("groups nested too deeply");
    Node alt{Node::kAlt, 0, 0, 0, {}};
    while (true) {
      absl::StatusOr<int> seq = ParseSequence(depth);
      if (!seq.ok()) return seq.status();
      alt.children.push_back(*seq);
      if (AtEnd() || Peek() != '|') break;
      ++i_;
    }
    return alt.children.size() == 1 ? alt.children[0] : Add(std::move(alt));
  }

  absl::StatusOr<int> ParseSequence(int depth) {
    Node seq{Node::kConcat, 0, 0, 0, {}};
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      absl::StatusOr<int> term = ParseTerm(depth);
      if (!term.ok()) return term.status();
      seq.children.push_back(*term);
    }
    if (seq.children.empty()) return Add(Node{Node::kEmpty, 0, 0, 0, {}});
    return seq.children.size() == 1 ? seq.children[0] : Add(std::move(seq));
  }

  // An assertion, or an atom with an optional quantifier.
  absl::StatusOr<int> ParseTerm(int depth) {
    const char32_t c = Peek();
    int assertion = -1;
    if (c == '^') assertion = kBol;
    if (c == '$') assertion = kEol;
    if (c == '\\' && Peek(1) == 'b') assertion = kWordBoundary;
    if (c == '\\' && Peek(1) == 'B') assertion = kNotWordBoundary;
    if (assertion >= 0) {
      i_ += c == '\\' ? 2 : 1;
      int min, max;
      if (TryQuantifier(&min, &max)) return Bad("nothing to repeat");
      return Add(Node{Node::kAssertNode, assertion, 0, 0, {}});
    }
    absl::StatusOr<int> atom = ParseAtom(depth);
    if (!atom.ok()) return atom.status();
    int min, max;
    if (!TryQuantifier(&min, &max)) return atom;
    if (min > kMaxRepeat || max > kMaxRepeat) return Bad("repeat count above 1000");
    if (max >= 0 && min > max) return Bad("numbers out of order in {} quantifier");
    if (!AtEnd() && Peek() == '?') ++i_;  // lazy: same set of matches
    return Add(Node{Node::kRepeat, 0, min, max, {*atom}});
  }

  // Consumes * + ? {n} {n,} {n,m} if present. A '{' that does not form one is left alone.
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
      while (j < p_.size() && IsDigit(p_[j]))
        v = std::min<long long>(v * 10 + (p_[j++] - '0'), 1 << 30);
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

  absl::StatusOr<int> ParseAtom(int depth) {
    const char32_t c = Peek();
    int min, max;
    if (c == '*' || c == '+' || c == '?') return Bad("nothing to repeat");
    if (c == '{' && TryQuantifier(&min, &max)) return Bad("nothing to repeat");
    if (c == '.') {
      ++i_;
      Class dot{{}, true};
      if (!dot_all_) {
        for (char32_t t : {U'\n', U'\r', U'\x2028', U'\x2029'}) dot.items.push_back({t, t, 0});
      }
      return AddClass(std::move(dot));
    }
    if (c == '(') return ParseGroup(depth);
    if (c == '[') {
      absl::StatusOr<Class> cls = ParseBracket();
      if (!cls.ok()) return cls.status();
      return AddClass(*std::move(cls));
    }
    if (c == '\\') {
      ++i_;
      absl::StatusOr<Class> cls = ParseEscape(/*in_class=*/false);
      if (!cls.ok()) return cls.status();
      return AddClass(*std::move(cls));
    }
    ++i_;
    return AddClass(Literal(c));
  }

  absl::StatusOr<int> ParseGroup(int depth) {
    ++i_;  // '('
    if (Peek() == '?') {
      if (Peek(1) == ':') {
        i_ += 2;
      } else if (Peek(1) == '<' && Peek(2) != '=' && Peek(2) != '!') {
        i_ += 2;
        while (!AtEnd() && Peek() != '>') ++i_;
        if (AtEnd()) return Bad("unterminated group name");
        ++i_;
      } else {
        return Bad("lookaround groups are not supported");
      }
    }
    absl::StatusOr<int> inner = ParseAlternation(depth + 1);
    if (!inner.ok()) return inner;
    if (AtEnd() || Peek() != ')') return Bad("missing ')'");
    ++i_;
    return inner;
  }

  // After a backslash. Outside a class \b and \B never get here (they are assertions).
  absl::StatusOr<Class> ParseEscape(bool in_class) {
    if (AtEnd()) return Bad("pattern ends with a backslash");
    const char32_t c = p_[i_++];
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        return Builtin(static_cast<char>(c));
      case 't':
        return Literal('\t');
      case 'n':
        return Literal('\n');
      case 'v':
        return Literal('\v');
      case 'f':
        return Literal('\f');
      case 'r':
        return Literal('\r');
      case 'b':
        return Literal(in_class ? U'\b' : U'b');
      case '0':
        if (IsDigit(Peek())) return Bad("octal escapes are not supported");
        return Literal(0);
      case 'c':
        if (!IsAsciiAlpha(Peek())) return Bad("\\c must be followed by a letter");
        return Literal(p_[i_++] % 32);
      case 'x':
        if (IsHex(Peek()) && IsHex(Peek(1))) {
          const char32_t v = HexValue(p_[i_]) * 16 + HexValue(p_[i_ + 1]);
          i_ += 2;
          return Literal(v);
        }
        return Literal('x');
      case 'u':
        return Literal(ParseUnicodeEscape());
      case 'k':
        if (Peek() == '<') return Bad("backreferences are not supported");
        return Literal('k');
      default:
        if (c >= '1' && c <= '9') return Bad("backreferences are not supported");
        return Literal(c);  // \. \* \\ \/ ..., and Annex B identity escapes such as \q
    }
  }

  // After "\u": four hex digits (a surrogate pair becomes one code point), else a literal 'u'.
  char32_t ParseUnicodeEscape() {
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

  absl::StatusOr<Class> ParseBracket() {
    ++i_;  // '['
    Class cls;
    if (Peek() == '^') {
      cls.negated = true;
      ++i_;
    }
    while (true) {
      if (AtEnd()) return Bad("missing ']'");
      if (Peek() == ']') {
        ++i_;
        return cls;
      }
      absl::StatusOr<Class::Item> lo = ParseClassAtom();
      if (!lo.ok()) return lo.status();
      if (Peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        absl::StatusOr<Class::Item> hi = ParseClassAtom();
        if (!hi.ok()) return hi.status();
        if (lo->builtin || hi->builtin) {  // Annex B: [\d-z] is \d, '-', 'z'
          cls.items.insert(cls.items.end(), {*lo, {'-', '-', 0}, *hi});
          continue;
        }
        if (lo->lo > hi->lo) return Bad("range out of order in character class");
        cls.items.push_back({lo->lo, hi->lo, 0});
        continue;
      }
      cls.items.push_back(*lo);
    }
  }

  absl::StatusOr<Class::Item> ParseClassAtom() {
    if (Peek() != '\\') return Class::Item{p_[i_], p_[i_++], 0};
    ++i_;
    if (Peek() == 'B') return Bad("\\B is not allowed in a character class");
    if (Peek() == '-') return Class::Item{p_[i_], p_[i_++], 0};
    absl::StatusOr<Class> escaped = ParseEscape(/*in_class=*/true);
    if (!escaped.ok()) return escaped.status();
    return escaped->items[0];
  }

  std::u32string_view p_;
  size_t i_ = 0;
  bool dot_all_;
  std::vector<Class>* classes_;
  std::vector<Node> nodes_;
};

// ---- compiler: syntax tree -> program ----

class Compiler {
 public:
  Compiler(const std::vector<Node>& nodes, std::vector<Inst>* program)
      : nodes_(nodes), program_(program) {}

  absl::Status Emit(int index) {
    if (static_cast<int>(program_->size()) > LoreRegex::kMaxProgramSize) {
      return Bad("pattern too large after expanding repeats");
    }
    const Node& node = nodes_[index];
    switch (node.kind) {
      case Node::kEmpty:
        return absl::OkStatus();
      case Node::kClassNode:
        Push({Inst::kClass, node.value});
        return absl::OkStatus();
      case Node::kAssertNode:
        Push({Inst::kAssert, node.value});
        return absl::OkStatus();
      case Node::kConcat:
        for (int child : node.children) {
          if (absl::Status s = Emit(child); !s.ok()) return s;
        }
        return absl::OkStatus();
      case Node::kAlt:
        return EmitAlternation(node);
      case Node::kRepeat:
        return EmitRepeat(node);
    }
    return absl::InternalError("regex: unknown node");
  }

 private:
  int Push(Inst inst) {
    program_->push_back(inst);
    return static_cast<int>(program_->size()) - 1;
  }
  int Here() const { return static_cast<int>(program_->size()); }

  //   split L1, next; L1: a; jump end; next: split L2, next2; L2: b; jump end; ... end:
  absl::Status EmitAlternation(const Node& node) {
    std::vector<int> jumps;
    for (size_t k = 0; k < node.children.size(); ++k) {
      const bool last = k + 1 == node.children.size();
      const int split = last ? -1 : Push({Inst::kSplit});
      if (split >= 0) (*program_)[split].x = Here();
      if (absl::Status s = Emit(node.children[k]); !s.ok()) return s;
      if (!last) {
        jumps.push_back(Push({Inst::kJump}));
        (*program_)[split].y = Here();
      }
    }
    for (int j : jumps) (*program_)[j].x = Here();
    return absl::OkStatus();
  }

  // min copies of the child, then either a loop (unbounded) or max - min optional copies.
  absl::Status EmitRepeat(const Node& node) {
    const int child = node.children[0];
    for (int k = 0; k < node.min; ++k) {
      if (absl::Status s = Emit(child); !s.ok()) return s;
    }
    if (node.max < 0) {
      const int split = Push({Inst::kSplit});
      (*program_)[split].x = Here();
      if (absl::Status s = Emit(child); !s.ok()) return s;
      Push({Inst::kJump, split});
      (*program_)[split].y = Here();
      return absl::OkStatus();
    }
    std::vector<int> splits;
    for (int k = node.min; k < node.max; ++k) {
      const int split = Push({Inst::kSplit});
      (*program_)[split].x = Here();
      splits.push_back(split);
      if (absl::Status s = Emit(child); !s.ok()) return s;
    }
    for (int split : splits) (*program_)[split].y = Here();
    return absl::OkStatus();
  }

  const std::vector<Node>& nodes_;
  std::vector<Inst>* program_;
};

}  // namespace

absl::StatusOr<LoreRegex> LoreRegex::Compile(std::string_view pattern,
                                             const LoreRegexOptions& options) {
  if (pattern.size() > static_cast<size_t>(kMaxPatternBytes)) {
    return Bad(absl::StrCat("pattern of ", pattern.size(), " bytes exceeds the limit of ",
                            kMaxPatternBytes));
  }
  LoreRegex regex;
  regex.options_ = options;
  const std::u32string code_points = DecodeAll(pattern);
  Parser parser(code_points, options.dot_all, &regex.classes_);
  absl::StatusOr<int> root = parser.Parse();
  if (!root.ok()) return root.status();
  Compiler compiler(parser.nodes(), &regex.program_);
  if (absl::Status s = compiler.Emit(*root); !s.ok()) return s;
  if (static_cast<int>(regex.program_.size()) > kMaxProgramSize) {
    return Bad("pattern too large after expanding repeats");
  }
  regex.program_.push_back({Inst::kMatch});
  return regex;
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

bool LoreRegex::Matches(const Class& cls, char32_t c) const {
  auto contains = [&](char32_t ch) {
    for (const Class::Item& item : cls.items) {
      if (item.builtin ? BuiltinMatches(item.builtin, ch) : (ch >= item.lo && ch <= item.hi)) {
        return true;
      }
    }
    return false;
  };
  bool hit = contains(c);
  if (!hit && options_.case_insensitive && IsAsciiAlpha(c)) hit = contains(c ^ 0x20);
  return hit != cls.negated;
}

// Pike's NFA simulation. `threads` holds the class instructions waiting at the current
// position; AddThread follows jumps, splits and assertions with an explicit stack and marks
// each instruction once per position (by generation), so empty loops terminate.
bool LoreRegex::Search(std::string_view text) const {
  const std::u32string cps = DecodeAll(text);
  const size_t n = cps.size();
  std::vector<uint32_t> mark(program_.size(), 0);
  std::vector<int> current, next, stack;
  uint32_t generation = 1;

  auto holds = [&](int kind, size_t pos) {
    const char32_t prev = pos > 0 ? cps[pos - 1] : 0;
    const char32_t cur = pos < n ? cps[pos] : 0;
    switch (kind) {
      case kBol:
        return pos == 0 || (options_.multiline && IsLineTerminator(prev));
      case kEol:
        return pos == n || (options_.multiline && IsLineTerminator(cur));
      default: {
        const bool boundary = (pos > 0 && IsWord(prev)) != (pos < n && IsWord(cur));
        return kind == kWordBoundary ? boundary : !boundary;
      }
    }
  };
  // Returns true when the match instruction is reached.
  auto add_thread = [&](std::vector<int>& threads, int start, size_t pos) {
    stack.assign(1, start);
    while (!stack.empty()) {
      const int pc = stack.back();
      stack.pop_back();
      if (mark[pc] == generation) continue;
      mark[pc] = generation;
      const Inst& inst = program_[pc];
      switch (inst.op) {
        case Inst::kMatch:
          return true;
        case Inst::kJump:
          stack.push_back(inst.x);
          break;
        case Inst::kSplit:
          stack.push_back(inst.y);
          stack.push_back(inst.x);
          break;
        case Inst::kAssert:
          if (holds(inst.x, pos)) stack.push_back(pc + 1);
          break;
        case Inst::kClass:
          threads.push_back(pc);
          break;
      }
    }
    return false;
  };

  for (size_t pos = 0;; ++pos) {
    if (add_thread(current, 0, pos)) return true;  // a match may start here
    if (pos == n) return false;
    ++generation;
    next.clear();
    for (int pc : current) {
      if (Matches(classes_[program_[pc].x], cps[pos]) && add_thread(next, pc + 1, pos + 1)) {
        return true;
      }
    }
    std::swap(current, next);
  }
}

}  // namespace troupe
