// Unicode Normalization Form C as Hugging Face tokenizers' NFC normalizer computes it (its Unicode
// data, measured into nfc_tables.h by scripts/golden/make_nfc_tables.py): canonical
// decomposition, canonical ordering of combining marks, canonical composition. Used for
// tokenizer.json files that name an NFC normalizer (Qwen2). Pure function: safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace troupe::unicode {

// `text` in NFC. Text made only of code points below U+00C0 is returned as is without decoding;
// each malformed UTF-8 byte becomes U+FFFD (as the pre-tokenizer would make it).
std::string ToNfc(std::string_view text);

}  // namespace troupe::unicode
