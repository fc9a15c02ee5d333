// A small regular-expression matcher for lorebook keys (Character Card V3 `use_regex`), used by
// ActivateLore on whichever thread builds the prompt. It exists because std::regex recurses once
// per input character (a key like "(a|b)*c" overflows an 8 MiB stack on ~16 KB of chat) and can
// take quadratic time; this one runs a Thompson NFA in O(text * pattern) time and fixed stack.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe {

struct LoreRegexOptions {
  bool case_insensitive = false;  // ASCII letters only (as std::regex::icase in the C locale)
  bool multiline = false;         // ^ and $ also match at line breaks (flag m)
  bool dot_all = false;           // . also matches line breaks (flag s)
};

// A compiled ECMAScript pattern that answers one question: does it match somewhere in a text?
// Supported: literals, ., [...] and [^...] with ranges, \d \D \w \W \s \S \b \B, ^ $, groups
// (...), (?:...), (?<name>...), alternation |, quantifiers * + ? {n} {n,} {n,m} (lazy forms
// accepted; they match the same texts), escapes \t \n \r \v \f \0 \xHH \uHHHH \cX, and the
// Annex B leniencies (a lone { or ] is a literal, \q means q). Not supported, so Compile fails:
// backreferences (\1), lookaround ((?=, (?!, (?<=, (?<!). Text and pattern are UTF-8 and match
// code point by code point; a byte that is not valid UTF-8 reads as U+FFFD.
// Immutable after Compile; safe for concurrent Search calls.
class LoreRegex {
 public:
  static constexpr int kMaxPatternBytes = 4096;
  static constexpr int kMaxProgramSize = 4000;  // instructions after expanding {n,m}
  static constexpr int kMaxNesting = 32;        // nested groups

  // kInvalidArgument with the reason for a malformed or unsupported pattern, or one past the
  // limits above.
  [[nodiscard]] static absl::StatusOr<LoreRegex> Compile(std::string_view pattern,
                                                         const LoreRegexOptions& options = {});

  // Compiles a key as written on a card: either a bare pattern, or "/pattern/flags" with flags
  // from "gimsuy" (i, m and s are honoured, the others ignored). `case_sensitive` is the
  // entry's setting; an `i` flag overrides it.
  [[nodiscard]] static absl::StatusOr<LoreRegex> CompileKey(std::string_view key,
                                                            bool case_sensitive);

  // True if the pattern matches a substring of `text`. O(code points * program size) time.
  bool Search(std::string_view text) const;

  // Instruction of the compiled program; public only so the .cc's helpers can name it.
  struct Inst {
    enum Op : uint8_t { kClass, kSplit, kJump, kAssert, kMatch } op;
    int x = 0;  // kClass: class index; kSplit/kJump: target; kAssert: assertion kind
    int y = 0;  // kSplit: second target
  };
  // A bracket class, '.', an escape class or a single literal.
  struct Class {
    struct Item {
      char32_t lo, hi;  // a code point range, when builtin == 0
      char builtin;     // 'd','D','w','W','s','S' for an escape class, else 0
    };
    std::vector<Item> items;
    bool negated = false;
  };

 private:
  LoreRegex() = default;
  bool Matches(const Class& cls, char32_t c) const;

  std::vector<Inst> program_;
  std::vector<Class> classes_;
  LoreRegexOptions options_;
};

}  // namespace troupe
