// Vocabulary shared by both tokenizer kinds: token texts and attributes, text -> id lookup,
// special ids, end-of-generation set, special-token splitting and per-token byte pieces.
// Immutable after Build(); safe for concurrent reads from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace troupe {

// Token attributes (llama.cpp llama_token_attr, the subset GGUF token types produce). A token
// with no bit set is "undefined" and renders as nothing.
enum TokenAttr : uint8_t {
  kAttrNormal = 1 << 0,
  kAttrUnknown = 1 << 1,
  kAttrControl = 1 << 2,
  kAttrUserDefined = 1 << 3,
  kAttrUnused = 1 << 4,
  kAttrByte = 1 << 5,
};

// Hash/equality that let unordered_map<std::string, ...> be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class Vocab {
 public:
  // Validates `data` (sizes, unique non-empty tokens) and derives attributes, special ids, the
  // end-of-generation set and pieces. `is_spm` selects the SentencePiece defaults and piece
  // decoding, else GPT-2 byte-level. kInvalidArgument on malformed data.
  [[nodiscard]] static absl::StatusOr<Vocab> Build(const VocabData& data, bool is_spm,
                                                   bool default_add_bos);

  int size() const { return static_cast<int>(texts_.size()); }
  bool InRange(TokenId id) const { return id >= 0 && id < size(); }
  const std::string& text(TokenId id) const { return texts_[id]; }  // REQUIRES: InRange(id)
  float score(TokenId id) const { return scores_[id]; }             // REQUIRES: InRange(id)
  uint8_t attr(TokenId id) const { return attrs_[id]; }             // REQUIRES: InRange(id)
  TokenId Find(std::string_view text) const {
    auto it = ids_.find(text);
    return it == ids_.end() ? -1 : it->second;
  }

  TokenId bos_id() const { return bos_id_; }
  TokenId eos_id() const { return eos_id_; }
  TokenId unk_id() const { return unk_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool IsEndOfGeneration(TokenId id) const { return InRange(id) && eog_[id]; }

  // Bytes of token `id` as llama.cpp's token_to_piece(lstrip = 0, special = render_special).
  std::string_view Piece(TokenId id, bool render_special) const;

  // One piece of the input after special-token splitting: a token id, or a byte range of the
  // input (token == -1) that still has to be tokenized.
  struct Fragment {
    TokenId token = -1;
    size_t offset = 0;  // bytes into the input; raw text only
    size_t length = 0;
  };
  // Which special tokens SplitSpecial cuts out of the text.
  enum class SpecialMatch {
    kNone,         // none: client text in a chat prompt (EncodePrompt)
    kUserDefined,  // user-defined tokens only: Encode with parse_special = false (llama.cpp)
    kAll,          // control, unknown and user-defined: parse_special = true, template text
  };
  // Splits `text` at occurrences of special tokens, longest token text first (llama.cpp
  // tokenizer_st_partition).
  std::vector<Fragment> SplitSpecial(std::string_view text, SpecialMatch match) const;
  // Control, unknown or user-defined: the tokens SplitSpecial can cut out, which chat templates
  // use as markers.
  bool IsSpecial(TokenId id) const {
    return InRange(id) && (attrs_[id] & (kAttrControl | kAttrUnknown | kAttrUserDefined));
  }

 private:
  Vocab() = default;
  void DeriveEndOfGeneration(const VocabData& data);

  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<uint8_t> attrs_;
  StringIdMap ids_;
  std::vector<std::string> pieces_;  // Piece(id, render_special = false) for normal/byte tokens
  std::vector<bool> eog_;
  std::vector<TokenId> special_tokens_;  // control/user-defined/unknown, longest text first
  TokenId bos_id_ = -1, eos_id_ = -1, unk_id_ = -1;
  bool add_bos_ = false;
  bool add_space_prefix_ = false;
};

}  // namespace troupe
