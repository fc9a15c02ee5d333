// Regular expressions for lorebook keys (Character Card V3 `use_regex`), used by ActivateLore on
// whichever thread builds the prompt. Cards are written for SillyTavern, whose keys are
// JavaScript (ECMAScript) patterns; matching runs on RE2, which takes time linear in the text
// and memory bounded by RE2::Options::max_mem, so no key, however hostile, can blow the stack
// or run away (std::regex recurses once per input character: "(a|b)*c" overflows an 8 MiB
// stack on ~16 KB of chat). What this file adds is the dialect: a single pass that rewrites
// the ECMAScript syntax into RE2's and refuses what RE2 cannot run.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace troupe {

struct LoreRegexOptions {
  bool case_insensitive = false;  // Unicode simple case folding, as RE2 (and JavaScript) fold
  bool multiline = false;         // ^ and $ also match next to a '\n' (flag m)
  bool dot_all = false;           // . also matches line breaks (flag s)
};

// A compiled ECMAScript pattern that answers one question: does it match somewhere in a text?
// Supported: literals, ., [...] and [^...] with ranges ([] matches nothing, [^] anything),
// \d \D \w \W \s \S \b \B (ASCII words and digits; \s is JavaScript's Unicode white space),
// ^ $, groups (...), (?:...), (?<name>...), alternation |, quantifiers * + ? {n} {n,} {n,m}
// (lazy forms accepted; they match the same texts), escapes \t \n \r \v \f \0 \xHH \uHHHH (a
// surrogate pair is one code point) \cX, and the Annex B leniencies (a lone { or ] is a
// literal, \q means q, [\d-z] is \d, '-', 'z'). '.' skips \n, \r, U+2028 and U+2029 unless
// dot_all. Not supported, so Compile fails: backreferences (\1, \k<name>), lookaround ((?=,
// (?!, (?<=, (?<!) and inline flags ((?i)). RE2's own extensions (\pL, \Q...\E, \z,
// [[:alpha:]]) are not read as such: \p means p, as in JavaScript without the u flag.
// Text and pattern are UTF-8 and match code point by code point; a byte that is not part of
// valid UTF-8 reads as U+FFFD. Differences from JavaScript that remain: with multiline, ^ and
// $ see line breaks at '\n' only (not at a lone '\r', U+2028 or U+2029).
// Immutable after Compile; safe for concurrent Search calls. Move-only.
class LoreRegex {
 public:
  static constexpr int kMaxPatternBytes = 4096;
  static constexpr int kMaxNesting = 32;  // nested groups
  static constexpr int kMaxRepeat = 1000;  // largest n or m in {n,m} (RE2's own limit too)
  // RE2 instructions, which work on bytes: '.' alone takes about twenty, so .{1000} fits.
  // Bounds the work per byte of text when RE2 falls back from its DFA to the NFA.
  static constexpr int kMaxProgramSize = 25000;
  // RE2::Options::max_mem: about two thirds for the compiled program, the rest for the DFA's
  // state cache (a search that fills it falls back to the NFA, still linear).
  static constexpr int64_t kMaxMemBytes = int64_t{2} << 20;

  // kInvalidArgument with the reason for a malformed or unsupported pattern, or one past the
  // limits above.
  [[nodiscard]] static absl::StatusOr<LoreRegex> Compile(std::string_view pattern,
                                                         const LoreRegexOptions& options = {});

  // Compiles a key as written on a card: either a bare pattern, or "/pattern/flags" with flags
  // from "gimsuy" (i, m and s are honoured, the others ignored). `case_sensitive` is the
  // entry's setting; an `i` flag overrides it.
  [[nodiscard]] static absl::StatusOr<LoreRegex> CompileKey(std::string_view key,
                                                            bool case_sensitive);

  LoreRegex(LoreRegex&&) noexcept;
  LoreRegex& operator=(LoreRegex&&) noexcept;
  ~LoreRegex();

  // True if the pattern matches a substring of `text`. Linear in the text's length.
  bool Search(std::string_view text) const;

  // RE2 instructions of the compiled program (at most kMaxProgramSize): what it holds beyond
  // the DFA state cache, which max_mem bounds.
  int program_size() const;

 private:
  explicit LoreRegex(std::unique_ptr<re2::RE2> re2);

  std::unique_ptr<re2::RE2> re2_;  // never null
};

}  // namespace troupe
