// Tokenizer built from GGUF metadata (tokenizer.ggml.*): SentencePiece-style ("llama") and
// GPT-2 byte-level BPE ("gpt2": SmolLM2, Llama-3, Qwen2). Immutable after construction, so safe
// for concurrent use from any thread (prompt preparation runs on worker threads).
// Behaviour matches llama.cpp's llama_tokenize / llama_token_to_piece; docs/tokenizer.md lists
// the few deliberate differences.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/types.h"
#include "engine/tokenizer/prompt_text.h"

namespace troupe {

class GgufFile;

// The tokenizer-relevant GGUF metadata, decoded. FromGguf fills it from tokenizer.ggml.*; tests
// and tools may build one by hand.
struct VocabData {
  std::string model;                 // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;                   // tokenizer.ggml.pre; "" = llama.cpp's default
  std::vector<std::string> tokens;   // [vocab_size] unique texts ("" becomes "[EMPTY_<id>]")
  std::vector<float> scores;         // [vocab_size] or empty (all 0); SentencePiece merge order
  std::vector<int32_t> token_types;  // [vocab_size] or empty (all normal): 1 normal, 2 unknown,
                                     // 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // "left right", rank = index; gpt2, and llama when read
                                     // from a tokenizer.json (pair ranks instead of scores)
  // Special ids; nullopt = the model type's default (llama: 1/2/0, gpt2: 11/11/none). Ids past
  // the vocabulary are ignored, as llama.cpp does.
  std::optional<int64_t> bos_id, eos_id, unk_id, eot_id, eom_id;
  std::optional<bool> add_bos;           // tokenizer.ggml.add_bos_token
  std::optional<bool> add_space_prefix;  // tokenizer.ggml.add_space_prefix
  // Set from a Hugging Face tokenizer.json (engine/tokenizer/hf_tokenizer.h): whole words that
  // are tokens skip the merges (model.ignore_merges) instead of the pre-tokenizer's default.
  std::optional<bool> ignore_merges;
  bool nfc = false;  // tokenizer.json's normalizer is NFC (engine/tokenizer/nfc.h)
  // llama (SentencePiece-style) from a tokenizer.json's Metaspace: where "▁" is prepended
  // ("first", "always", "never"; "" = at the start and after each special token) and whether
  // each "▁" starts a word of its own.
  std::string prepend_scheme;
  bool split_words = false;
  // The special ids above are all there are: an unset one means none, not the model type's
  // default (tokenizer.json names its special tokens; GGUF files rely on the defaults).
  bool specials_explicit = false;
};

class Tokenizer {
 public:
  enum class Kind { kSentencePiece, kBytePairGpt2 };

  // Reads tokenizer.ggml.model, tokens, scores, token_type, merges, bos/eos/unknown/eot ids,
  // add_bos_token, add_space_prefix. kInvalidArgument names a missing or malformed key or an
  // unsupported model / pre-tokenizer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);
  // The decoding half of FromGguf: reads the keys above without validating their contents.
  [[nodiscard]] static absl::StatusOr<VocabData> ReadVocab(const GgufFile& file);
  // Builds a tokenizer from decoded metadata; the validation half of FromGguf.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(VocabData data);
  virtual ~Tokenizer() = default;

  virtual Kind kind() const = 0;
  virtual int vocab_size() const = 0;

  // Text -> ids. When parse_special is true, special-token texts in `text` (e.g. "<|im_start|>")
  // become their ids; otherwise they are tokenized as plain text (user content). User-defined
  // tokens (token_type 4) are always matched, as in llama.cpp. add_bos prepends BOS when the
  // model wants one (add_bos()). EOS is never appended (llama.cpp would for add_eos_token models,
  // which are embedding models).
  virtual std::vector<TokenId> Encode(std::string_view text, bool add_bos,
                                      bool parse_special) const = 0;

  // A rendered chat prompt -> ids, role-safe: special-token texts in template segments become
  // their ids; client segments are plain text, in which no special token of any kind (control,
  // unknown or user-defined) is matched. The special tokens cut out of the template text split
  // the prompt into pieces, and each piece (template and client text joined) is encoded as one
  // text, as HF transformers encodes a rendered template. So a prompt whose client text holds
  // no special-token text encodes as Encode(prompt.Flat(), add_bos, true) does. add_bos as in
  // Encode.
  virtual std::vector<TokenId> EncodePrompt(const PromptText& prompt, bool add_bos) const = 0;

  // The raw bytes of one token (byte tokens like <0x0A> decoded, "▁" -> space, GPT-2 byte map
  // undone). Control and unknown tokens give "" unless render_special; user-defined tokens
  // always give their text; ids outside the vocabulary give "".
  virtual std::string TokenBytes(TokenId id, bool render_special = false) const = 0;
  // Concatenated TokenBytes (no leading-space removal: llama.cpp's token_to_piece with lstrip 0);
  // may contain invalid UTF-8 if ids split a character.
  std::string Decode(const std::vector<TokenId>& ids) const;

  virtual std::string_view TokenText(TokenId id) const = 0;  // vocabulary string as stored
  virtual TokenId bos_id() const = 0;                        // -1 if none
  virtual TokenId eos_id() const = 0;                        // -1 if none
  virtual bool add_bos() const = 0;                          // model wants BOS prepended
  // True for EOS and end-of-turn tokens (e.g. <|im_end|>, <|eot_id|>, <end_of_turn>).
  virtual bool IsEndOfGeneration(TokenId id) const = 0;
  // Control, unknown or user-defined (token_type 3, 2, 4): the tokens chat templates use as
  // markers, which EncodePrompt never cuts out of client text.
  virtual bool IsSpecial(TokenId id) const = 0;
  // Looks up a token by its exact vocabulary text; -1 if absent.
  virtual TokenId Find(std::string_view token_text) const = 0;
};

// Turns a stream of token ids into text deltas that are always valid UTF-8: bytes of an
// incomplete character are held back until the character completes, and bytes that can never
// form a character become U+FFFD. The concatenated deltas (plus Flush) equal Decode(ids)
// whenever that is valid UTF-8; in particular no leading space is dropped, so a completion
// continues its prompt exactly (llama.cpp server behaviour). Not thread-safe; one per request.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Returns the text that became complete with `id` (possibly empty).
  std::string Push(TokenId id);
  // Returns any held-back bytes at the end of the stream, invalid ones replaced by U+FFFD.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;  // must outlive this
  std::string pending_;         // bytes not yet returned; at most one incomplete character
};

// True if `text` is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view text);

}  // namespace troupe
