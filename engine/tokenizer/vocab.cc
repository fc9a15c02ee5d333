// Vocabulary construction and special-token splitting (see vocab.h).
#include "engine/tokenizer/vocab.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 '▁'

// Token texts llama.cpp treats as end of generation (llama_vocab::impl::load): end-of-turn and
// end-of-text markers, plus the FIM pad / repo / file-separator tokens it detects by text.
// clang-format off
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",  // DeepSeek
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>",
    "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>", "[EOT]",
};
// clang-format on

uint8_t AttrFromType(int32_t type) {
  switch (type) {
    case 1:
      return kAttrNormal;
    case 2:
      return kAttrUnknown;
    case 3:
      return kAttrControl;
    case 4:
      return kAttrUserDefined;
    case 5:
      return kAttrUnused;
    case 6:
      return kAttrByte;
    default:
      return 0;  // undefined
  }
}

// "<0xAB>" -> 0xAB; -1 if `text` is not a byte token text.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9')
      value |= c - '0';
    else if (c >= 'A' && c <= 'F')
      value |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      value |= c - 'a' + 10;
    else
      return -1;
  }
  return value;
}

// The piece of a normal token: SentencePiece turns '▁' into ' '; GPT-2 undoes the byte map.
std::string NormalPiece(std::string_view text, bool is_spm) {
  std::string out;
  if (is_spm) {
    for (size_t i = 0; i < text.size();) {
      if (text.substr(i, kSpmSpace.size()) == kSpmSpace) {
        out.push_back(' ');
        i += kSpmSpace.size();
      } else {
        out.push_back(text[i++]);
      }
    }
    return out;
  }
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t start = offset;
    const int byte = unicode::CodepointToByte(unicode::DecodeOne(text, &offset));
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      // Not a byte-level character (llama.cpp writes "[UNK_BYTE_0x..]"); keep the text as is.
      out.append(text.substr(start, offset - start));
    }
  }
  return out;
}

TokenId ResolveSpecial(std::optional<int64_t> given, TokenId fallback, int vocab_size) {
  TokenId id = fallback < vocab_size ? fallback : -1;
  if (given.has_value() && *given >= 0 && *given < vocab_size) id = static_cast<TokenId>(*given);
  return id;
}

}  // namespace

absl::StatusOr<Vocab> Vocab::Build(const VocabData& data, bool is_spm, bool default_add_bos) {
  const size_t n = data.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("tokenizer.ggml.tokens is too large");
  }
  if (!data.scores.empty() && data.scores.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.scores has ", data.scores.size(),
                                                   " entries for ", n, " tokens"));
  }
  if (!data.token_types.empty() && data.token_types.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer.ggml.token_type has ", data.token_types.size(), " entries for ", n, " tokens"));
  }
  Vocab v;
  v.texts_.reserve(n);
  v.scores_.assign(n, 0.0f);
  v.attrs_.assign(n, kAttrNormal);
  v.ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string text = data.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]") : data.tokens[i];
    if (!v.ids_.emplace(text, static_cast<TokenId>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate token '", text, "' at ids ", v.ids_[text], " and ", i));
    }
    v.texts_.push_back(std::move(text));
    if (!data.scores.empty()) v.scores_[i] = data.scores[i];
    if (!data.token_types.empty()) v.attrs_[i] = AttrFromType(data.token_types[i]);
  }
  const int size = static_cast<int>(n);
  const bool defaults = !data.specials_explicit;
  v.bos_id_ = ResolveSpecial(data.bos_id, defaults ? (is_spm ? 1 : 11) : -1, size);
  v.eos_id_ = ResolveSpecial(data.eos_id, defaults ? (is_spm ? 2 : 11) : -1, size);
  v.unk_id_ = ResolveSpecial(data.unk_id, defaults && is_spm ? 0 : -1, size);
  v.add_bos_ = data.add_bos.value_or(is_spm || default_add_bos);
  v.add_space_prefix_ = data.add_space_prefix.value_or(is_spm);
  if (v.add_bos_ && v.bos_id_ < 0) {
    return absl::InvalidArgumentError("add_bos_token is true but there is no BOS token");
  }
  v.DeriveEndOfGeneration(data);

  v.pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t a = v.attrs_[i];
    if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      v.pieces_[i] = v.texts_[i];
      v.special_tokens_.push_back(static_cast<TokenId>(i));
    } else if (a & kAttrNormal) {
      v.pieces_[i] = NormalPiece(v.texts_[i], is_spm);
    } else if (a & kAttrByte) {
      const int byte = ParseByteToken(v.texts_[i]);
      if (byte >= 0) v.pieces_[i] = std::string(1, static_cast<char>(byte));
    }
  }
  std::stable_sort(v.special_tokens_.begin(), v.special_tokens_.end(),
                   [&v](TokenId a, TokenId b) { return v.texts_[a].size() > v.texts_[b].size(); });
  return v;
}

void Vocab::DeriveEndOfGeneration(const VocabData& data) {
  eog_.assign(texts_.size(), false);
  for (std::string_view text : kEndOfGenerationTexts) {
    const TokenId id = Find(text);
    if (id < 0) continue;
    eog_[id] = true;
    attrs_[id] |= kAttrControl;  // llama.cpp forces control type on these
  }
  for (TokenId id : {eos_id_, ResolveSpecial(data.eot_id, -1, size()),
                     ResolveSpecial(data.eom_id, -1, size())}) {
    if (id >= 0) eog_[id] = true;
  }
}

std::string_view Vocab::Piece(TokenId id, bool render_special) const {
  if (!InRange(id)) return {};
  if ((attrs_[id] & (kAttrUnknown | kAttrControl)) && !render_special) return {};
  return pieces_[id];
}

std::vector<Vocab::Fragment> Vocab::SplitSpecial(std::string_view text, SpecialMatch match) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  if (match == SpecialMatch::kNone) return frags;
  std::vector<Fragment> next;
  for (TokenId id : special_tokens_) {
    if (match != SpecialMatch::kAll && (attrs_[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = texts_[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view hay = text.substr(0, f.offset + f.length);
      size_t pos = f.offset;
      for (;;) {
        const size_t match = hay.find(needle, pos);
        if (match == std::string_view::npos) {
          if (hay.size() > pos) next.push_back({-1, pos, hay.size() - pos});
          break;
        }
        if (match > pos) next.push_back({-1, pos, match - pos});
        next.push_back({id, 0, 0});
        pos = match + needle.size();
      }
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace troupe
