#include "engine/character/lore_regex.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe {
namespace {

// Whether `pattern` compiles and finds a match in `text`.
bool Finds(std::string_view pattern, std::string_view text, LoreRegexOptions options = {}) {
  absl::StatusOr<LoreRegex> regex = LoreRegex::Compile(pattern, options);
  EXPECT_TRUE(regex.ok()) << pattern << ": " << regex.status();
  return regex.ok() && regex->Search(text);
}

std::string CompileError(std::string_view pattern) {
  absl::StatusOr<LoreRegex> regex = LoreRegex::Compile(pattern);
  EXPECT_FALSE(regex.ok()) << pattern;
  if (regex.ok()) return "";
  EXPECT_EQ(regex.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(regex.status().message());
}

TEST(LoreRegexTest, LiteralsAndDot) {
  EXPECT_TRUE(Finds("dragon", "the red dragon sleeps"));
  EXPECT_FALSE(Finds("dragon", "the red drag on"));
  EXPECT_TRUE(Finds("", "anything"));
  EXPECT_TRUE(Finds("", ""));
  EXPECT_TRUE(Finds("d.g", "dog"));
  EXPECT_FALSE(Finds("d.g", "d\ng"));
  EXPECT_TRUE(Finds("d.g", "d\ng", {.dot_all = true}));
  EXPECT_TRUE(Finds("a\\.b", "a.b"));
  EXPECT_FALSE(Finds("a\\.b", "axb"));
}

TEST(LoreRegexTest, ClassesAndEscapes) {
  EXPECT_TRUE(Finds("[bc]at", "a cat"));
  EXPECT_FALSE(Finds("[bc]at", "a rat"));
  EXPECT_TRUE(Finds("[^bc]at", "a rat"));
  EXPECT_FALSE(Finds("^[^bc]at", "cat"));
  EXPECT_TRUE(Finds("[a-c]{3}", "xxabcxx"));
  EXPECT_TRUE(Finds("\\d\\d", "room 42"));
  EXPECT_FALSE(Finds("\\d\\d", "room 4"));
  EXPECT_TRUE(Finds("\\w+\\s\\W", "hi !"));
  EXPECT_TRUE(Finds("[\\d-z]", "-"));     // Annex B: \d, '-', 'z'
  EXPECT_TRUE(Finds("a]", "a]"));         // a lone ']' is a literal (Annex B)
  EXPECT_FALSE(Finds("[]", "anything"));  // ']' right after '[' closes an empty class,
  EXPECT_FALSE(Finds("[]a]", "a]"));      // which matches nothing
  EXPECT_TRUE(Finds("[^]", "\n"));        // and negated, anything
  EXPECT_TRUE(Finds("a{,2}", "a{,2}"));   // not a quantifier, so literal (Annex B)
  EXPECT_TRUE(Finds("\\x41\\u0042", "AB"));
  EXPECT_TRUE(Finds("\\t", "a\tb"));
  EXPECT_TRUE(Finds("\\q", "q"));  // identity escape
  EXPECT_TRUE(Finds("[\\b]", "\b"));
}

TEST(LoreRegexTest, QuantifiersAlternationAndGroups) {
  EXPECT_TRUE(Finds("colou?r", "color"));
  EXPECT_TRUE(Finds("colou?r", "colour"));
  EXPECT_TRUE(Finds("ab+c", "abbbc"));
  EXPECT_FALSE(Finds("ab+c", "ac"));
  EXPECT_TRUE(Finds("ab*c", "ac"));
  EXPECT_TRUE(Finds("^a{2,3}$", "aaa"));
  EXPECT_FALSE(Finds("^a{2,3}$", "aaaa"));
  EXPECT_TRUE(Finds("^a{2,}$", "aaaaaa"));
  EXPECT_TRUE(Finds("^(ab){2}$", "abab"));
  EXPECT_TRUE(Finds("^(?:cat|dog)s?$", "dogs"));
  EXPECT_FALSE(Finds("^(?:cat|dog)s?$", "cow"));
  EXPECT_TRUE(Finds("^(?<pet>cat)$", "cat"));
  EXPECT_TRUE(Finds("a+?b", "aab"));     // lazy forms match the same texts
  EXPECT_TRUE(Finds("(a*)*b", "aaab"));  // empty loops terminate
  EXPECT_TRUE(Finds("x|", "y"));         // empty alternative
}

TEST(LoreRegexTest, AnchorsAndWordBoundaries) {
  EXPECT_TRUE(Finds("^king", "king of the hill"));
  EXPECT_FALSE(Finds("^king", "the king"));
  EXPECT_TRUE(Finds("hill$", "king of the hill"));
  EXPECT_FALSE(Finds("^king$", "king\nqueen"));
  EXPECT_TRUE(Finds("^queen$", "king\nqueen", {.multiline = true}));
  EXPECT_TRUE(Finds("\\bart\\b", "the art of war"));
  EXPECT_FALSE(Finds("\\bart\\b", "the party"));
  EXPECT_TRUE(Finds("\\Bart", "the party"));
}

TEST(LoreRegexTest, CaseInsensitiveFoldsAsciiLetters) {
  EXPECT_FALSE(Finds("Dragon", "DRAGON"));
  EXPECT_TRUE(Finds("Dragon", "DRAGON", {.case_insensitive = true}));
  EXPECT_TRUE(Finds("[a-z]+!", "HEY!", {.case_insensitive = true}));
  EXPECT_FALSE(Finds("[^a]", "A", {.case_insensitive = true}));
}

// Keys are JavaScript patterns run on RE2: the syntax RE2 reads differently is rewritten first.
TEST(LoreRegexTest, KeepsJavaScriptMeaningsWhereRe2Differs) {
  EXPECT_TRUE(Finds("a\\sb", "a\u00A0b"));  // JavaScript's \s has Unicode spaces, RE2's not
  EXPECT_TRUE(Finds("a\\sb", "a\vb"));
  EXPECT_FALSE(Finds("a\\Sb", "a\u3000b"));
  EXPECT_FALSE(Finds("a[\\S]b", "a\u2028b"));
  EXPECT_TRUE(Finds("a[\\S]b", "axb"));
  EXPECT_FALSE(Finds("a.b", "a\rb"));  // RE2's '.' would take '\r' and U+2028
  EXPECT_FALSE(Finds("a.b", "a\u2028b"));
  EXPECT_TRUE(Finds("a.b", "a\u2028b", {.dot_all = true}));
  // RE2's own extensions mean what JavaScript makes of them: identity escapes and literals.
  EXPECT_TRUE(Finds("\\pL", "pL"));
  EXPECT_FALSE(Finds("\\pL", "x"));
  EXPECT_TRUE(Finds("end\\z", "endz"));
  EXPECT_TRUE(Finds("[[:alpha:]]", "a]"));  // '[' ':' 'a' 'l' 'p' 'h' then a literal ']'
  EXPECT_FALSE(Finds("[[:alpha:]]", "b"));
  EXPECT_TRUE(Finds("\\Q.\\E", "QxE"));
}

// RE2 folds case as JavaScript does, beyond ASCII (the old engine folded ASCII letters only).
TEST(LoreRegexTest, CaseInsensitiveFoldsUnicodeAsJavaScriptDoes) {
  EXPECT_TRUE(Finds("ÉCLAIR", "éclair", {.case_insensitive = true}));
  EXPECT_FALSE(Finds("ÉCLAIR", "éclair"));
  EXPECT_TRUE(Finds("[à-ÿ]", "É", {.case_insensitive = true}));
}

// RE2's (?m) breaks lines at '\n' only: a lone '\r' (old Mac line ends) is not a line break
// for ^ and $, as it is in JavaScript. "\r\n" ends a line like '\n' does, except that $ sees
// the end of the line after the '\r'.
TEST(LoreRegexTest, MultilineBreaksLinesAtNewline) {
  EXPECT_TRUE(Finds("^b$", "a\nb\nc", {.multiline = true}));
  EXPECT_TRUE(Finds("^b", "a\r\nb", {.multiline = true}));
  EXPECT_FALSE(Finds("^b", "a\rb", {.multiline = true}));
}

TEST(LoreRegexTest, MatchesCodePointsNotBytes) {
  EXPECT_TRUE(Finds("^caf.$", "café"));
  EXPECT_TRUE(Finds("^[à-ÿ]+$", "éè"));
  EXPECT_TRUE(Finds("クイル", "私はクイルです"));
  EXPECT_TRUE(Finds("^\\uD83D\\uDE00$", "😀"));  // a surrogate pair is one code point
  EXPECT_TRUE(Finds("a.b",
                    "a\xff"
                    "b"));  // an invalid byte reads as one U+FFFD
}

TEST(LoreRegexTest, RefusesUnsupportedAndMalformedPatterns) {
  EXPECT_EQ(CompileError("(a)\\1"), "regex: backreferences are not supported");
  EXPECT_EQ(CompileError("(?<n>a)\\k<n>"), "regex: backreferences are not supported");
  EXPECT_EQ(CompileError("(?=a)"), "regex: lookaround groups are not supported");
  EXPECT_EQ(CompileError("(?<!a)b"), "regex: lookaround groups are not supported");
  EXPECT_EQ(CompileError("(abc"), "regex: missing ')'");
  EXPECT_EQ(CompileError("abc)"), "regex: unmatched ')'");
  EXPECT_EQ(CompileError("[abc"), "regex: missing ']'");
  EXPECT_EQ(CompileError("[z-a]"), "regex: range out of order in character class");
  EXPECT_EQ(CompileError("*a"), "regex: nothing to repeat");
  EXPECT_EQ(CompileError("a|+"), "regex: nothing to repeat");
  EXPECT_EQ(CompileError("^*"), "regex: nothing to repeat");
  EXPECT_EQ(CompileError("a{3,2}"), "regex: numbers out of order in {} quantifier");
  EXPECT_EQ(CompileError("a\\"), "regex: pattern ends with a backslash");
  EXPECT_EQ(CompileError("(?i)a"), "regex: only (?:...) and (?<name>...) groups are supported");
}

TEST(LoreRegexTest, EnforcesSizeLimits) {
  EXPECT_EQ(CompileError("a{1001}"), "regex: repeat count above 1000");
  EXPECT_EQ(CompileError("(a{1000}){1000}"), "regex: pattern too large after expanding repeats");
  // RE2 caps nested repeats at 1000 in product (the matcher before RE2 took this one).
  EXPECT_EQ(CompileError("((a{10}){10}){11}"),
            "regex: pattern too large after expanding repeats");
  EXPECT_TRUE(Finds("^((a{10}){10}){10}$", std::string(1000, 'a')));
  EXPECT_EQ(CompileError(std::string(LoreRegex::kMaxPatternBytes + 1, 'a')),
            "regex: pattern of 4097 bytes exceeds the limit of 4096");
  std::string deep = std::string(40, '(') + "a" + std::string(40, ')');
  EXPECT_EQ(CompileError(deep), "regex: groups nested too deeply");
  EXPECT_TRUE(Finds(std::string(30, '(') + "a" + std::string(30, ')'), "a"));
  // Each repeat is within bounds, but the program RE2 would build is not.
  std::string wide;
  for (int k = 0; k < 4; ++k) wide += ".{1000}";
  EXPECT_EQ(CompileError(wide), "regex: pattern too large after expanding repeats");
  EXPECT_TRUE(Finds(".{1000}", std::string(1000, 'x')));
}

TEST(LoreRegexTest, LongInputRunsInFixedStack) {
  const std::string text(300000, 'a');
  EXPECT_FALSE(Finds("(a|b)*c", text));
  EXPECT_TRUE(Finds("(a|b)*$", text));
  EXPECT_FALSE(Finds("(a*)*b", text));
}

TEST(LoreRegexTest, CompileKeyReadsSlashFlagsForm) {
  auto finds = [](std::string_view key, bool case_sensitive, std::string_view text) {
    absl::StatusOr<LoreRegex> regex = LoreRegex::CompileKey(key, case_sensitive);
    EXPECT_TRUE(regex.ok()) << key << ": " << regex.status();
    return regex.ok() && regex->Search(text);
  };
  EXPECT_TRUE(finds("/vault/i", true, "VAULT"));  // i overrides the entry
  EXPECT_FALSE(finds("/vault/", true, "VAULT"));
  EXPECT_TRUE(finds("/vault/", false, "VAULT"));  // no i: the entry decides
  EXPECT_TRUE(finds("/^b$/m", true, "a\nb"));
  EXPECT_TRUE(finds("/a.b/s", true, "a\nb"));
  EXPECT_TRUE(finds("/a/b/g", true, "a/b"));  // last slash ends the pattern
  // Not the slash form: a bare pattern, matched as written.
  EXPECT_TRUE(finds("/etc/passwd", true, "/etc/passwd"));
  EXPECT_FALSE(finds("/x/q", true, "x"));  // "q" is not a flag
}

}  // namespace
}  // namespace troupe
