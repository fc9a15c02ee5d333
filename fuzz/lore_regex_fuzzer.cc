// Fuzzes lorebook regex keys (engine/character/lore_regex): compile an ECMAScript pattern and
// search a text with it. Input: one flags byte (bit 0 case_insensitive, 1 multiline, 2
// dot_all, 3 = compile as a card key "/pattern/flags" with CompileKey, 4 = the key's
// case_sensitive), then the pattern up to the first 0 byte, then the text. Asserted besides
// "no crash": a pattern made only of escaped literal characters always compiles and finds
// itself.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/check.h"
#include "engine/character/lore_regex.h"
#include "fuzz/fuzz_support.h"

namespace troupe {
namespace {

// `text` with every ASCII punctuation character escaped, so that it reads as a literal; empty
// when `text` holds something an escape cannot make literal here (a line break, a control
// byte or a non-ASCII byte), or is too long for a pattern.
std::string EscapeLiteral(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7F) return "";
    if (!(std::isalnum(b) || c == ' ')) out.push_back('\\');
    out.push_back(c);
  }
  if (out.size() > LoreRegex::kMaxPatternBytes / 2) return "";
  return out;
}

}  // namespace
}  // namespace troupe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  troupe::fuzz::ByteReader in(data, size);
  const uint8_t flags = in.Byte();
  const std::string_view pattern = in.Until('\0');
  const std::string_view text = in.Rest();
  if (flags & 8) {
    absl::StatusOr<troupe::LoreRegex> key = troupe::LoreRegex::CompileKey(pattern, flags & 16);
    if (key.ok()) (void)key->Search(text);
  } else {
    const troupe::LoreRegexOptions options{.case_insensitive = (flags & 1) != 0,
                                           .multiline = (flags & 2) != 0,
                                           .dot_all = (flags & 4) != 0};
    absl::StatusOr<troupe::LoreRegex> re = troupe::LoreRegex::Compile(pattern, options);
    if (re.ok()) (void)re->Search(text);
  }
  const std::string literal = troupe::EscapeLiteral(text.substr(0, 256));
  if (!literal.empty()) {
    absl::StatusOr<troupe::LoreRegex> re = troupe::LoreRegex::Compile(literal);
    TROUPE_CHECK_MSG(re.ok(), "an escaped literal did not compile: %s",
                     std::string(re.status().message()).c_str());
    TROUPE_CHECK_MSG(re->Search(text), "an escaped literal did not find itself");
  }
  return 0;
}
