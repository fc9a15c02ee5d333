// Special-token splitting for both tokenizer kinds (see vocab_tokenizer.h and tokenizer.h).
#include "engine/tokenizer/vocab_tokenizer.h"

namespace troupe {

std::vector<TokenId> VocabTokenizer::Encode(std::string_view text, bool add_bos,
                                            bool parse_special) const {
  std::vector<TokenId> out;
  if (add_bos && vocab_.add_bos()) out.push_back(vocab_.bos_id());
  const Vocab::SpecialMatch match =
      parse_special ? Vocab::SpecialMatch::kAll : Vocab::SpecialMatch::kUserDefined;
  EncodeFragments(text, vocab_.SplitSpecial(text, match), &out);
  return out;
}

// Design: each segment is split on its own (template text at every special token, client text
// at none) and the byte ranges that end up side by side, across segment boundaries, are joined
// again, so "<|im_start|>" + "user\n" + "Hi" encodes "user\nHi" as one text, exactly as
// Encode(flat, parse_special = true) would, and "<|im_end|>" inside client text is joined to
// its neighbours as plain bytes.
std::vector<TokenId> VocabTokenizer::EncodePrompt(const PromptText& prompt, bool add_bos) const {
  std::vector<TokenId> out;
  if (add_bos && vocab_.add_bos()) out.push_back(vocab_.bos_id());
  const std::string text = prompt.Flat();
  std::vector<Vocab::Fragment> fragments;
  size_t offset = 0;  // of the segment in `text`
  for (const PromptText::Segment& segment : prompt.segments()) {
    const Vocab::SpecialMatch match =
        segment.is_template ? Vocab::SpecialMatch::kAll : Vocab::SpecialMatch::kNone;
    for (Vocab::Fragment f : vocab_.SplitSpecial(segment.text, match)) {
      if (f.token < 0) {
        f.offset += offset;
        Vocab::Fragment* last = fragments.empty() ? nullptr : &fragments.back();
        if (last != nullptr && last->token < 0 && last->offset + last->length == f.offset) {
          last->length += f.length;
          continue;
        }
      }
      fragments.push_back(f);
    }
    offset += segment.text.size();
  }
  EncodeFragments(text, fragments, &out);
  return out;
}

}  // namespace troupe
