// Tokenizer construction from GGUF metadata, Decode, StreamingDetokenizer and UTF-8 checks.
#include "engine/tokenizer/tokenizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/formats/gguf.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/spm_tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace troupe {
namespace {

// Turns kNotFound into nullopt; any other error names the key.
template <typename T>
absl::StatusOr<std::optional<T>> Optional(absl::StatusOr<T> value, std::string_view key) {
  if (value.ok()) return std::optional<T>(*std::move(value));
  if (absl::IsNotFound(value.status())) return std::optional<T>();
  return absl::InvalidArgumentError(
      absl::StrCat("GGUF key ", std::string(key), ": ", value.status().message()));
}

template <typename T>
absl::StatusOr<T> Required(absl::StatusOr<T> value, std::string_view key) {
  if (value.ok()) return value;
  return absl::InvalidArgumentError(
      absl::StrCat("GGUF key ", std::string(key), " is required: ", value.status().message()));
}

absl::StatusOr<std::optional<int64_t>> OptionalId(const GgufFile& file, std::string_view key) {
  TROUPE_ASSIGN_OR_RETURN(std::optional<uint64_t> id, Optional(file.GetUint(key), key));
  if (!id.has_value()) return std::optional<int64_t>();
  return std::optional<int64_t>(*id > static_cast<uint64_t>(INT64_MAX) ? -1
                                                                       : static_cast<int64_t>(*id));
}

// Appends the UTF-8 of U+FFFD.
void AppendReplacement(std::string* out) { out->append("\xEF\xBF\xBD"); }

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  TROUPE_ASSIGN_OR_RETURN(VocabData data, ReadVocab(file));
  return FromVocab(std::move(data));
}

absl::StatusOr<VocabData> Tokenizer::ReadVocab(const GgufFile& file) {
  VocabData data;
  TROUPE_ASSIGN_OR_RETURN(data.model,
                          Required(file.GetString("tokenizer.ggml.model"), "tokenizer.ggml.model"));
  TROUPE_ASSIGN_OR_RETURN(std::optional<std::string> pre,
                          Optional(file.GetString("tokenizer.ggml.pre"), "tokenizer.ggml.pre"));
  data.pre = pre.value_or("");
  TROUPE_ASSIGN_OR_RETURN(
      data.tokens, Required(file.GetStringArray("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens"));
  TROUPE_ASSIGN_OR_RETURN(
      std::optional<std::vector<double>> scores,
      Optional(file.GetFloatArray("tokenizer.ggml.scores"), "tokenizer.ggml.scores"));
  if (scores.has_value()) data.scores.assign(scores->begin(), scores->end());  // f32 in the file
  TROUPE_ASSIGN_OR_RETURN(
      std::optional<std::vector<int64_t>> types,
      Optional(file.GetIntArray("tokenizer.ggml.token_type"), "tokenizer.ggml.token_type"));
  if (types.has_value()) data.token_types.assign(types->begin(), types->end());
  TROUPE_ASSIGN_OR_RETURN(
      std::optional<std::vector<std::string>> merges,
      Optional(file.GetStringArray("tokenizer.ggml.merges"), "tokenizer.ggml.merges"));
  if (merges.has_value()) data.merges = *std::move(merges);
  TROUPE_ASSIGN_OR_RETURN(data.bos_id, OptionalId(file, "tokenizer.ggml.bos_token_id"));
  TROUPE_ASSIGN_OR_RETURN(data.eos_id, OptionalId(file, "tokenizer.ggml.eos_token_id"));
  TROUPE_ASSIGN_OR_RETURN(data.unk_id, OptionalId(file, "tokenizer.ggml.unknown_token_id"));
  TROUPE_ASSIGN_OR_RETURN(data.eot_id, OptionalId(file, "tokenizer.ggml.eot_token_id"));
  TROUPE_ASSIGN_OR_RETURN(data.eom_id, OptionalId(file, "tokenizer.ggml.eom_token_id"));
  TROUPE_ASSIGN_OR_RETURN(data.add_bos, Optional(file.GetBool("tokenizer.ggml.add_bos_token"),
                                                 "tokenizer.ggml.add_bos_token"));
  TROUPE_ASSIGN_OR_RETURN(
      data.add_space_prefix,
      Optional(file.GetBool("tokenizer.ggml.add_space_prefix"), "tokenizer.ggml.add_space_prefix"));
  return data;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(VocabData data) {
  if (data.model == "llama") {
    TROUPE_ASSIGN_OR_RETURN(Vocab vocab,
                            Vocab::Build(data, /*is_spm=*/true, /*default_add_bos=*/true));
    SpmOptions options{.merges = data.merges, .split_words = data.split_words};
    if (data.prepend_scheme == "first") {
      options.prepend = SpmPrepend::kFirst;
    } else if (data.prepend_scheme == "always") {
      options.prepend = SpmPrepend::kAlways;
    } else if (data.prepend_scheme == "never") {
      options.prepend = SpmPrepend::kNever;
    } else if (!data.prepend_scheme.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown Metaspace prepend_scheme '", data.prepend_scheme, "'"));
    }
    return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab), std::move(options)));
  }
  if (data.model == "gpt2") {
    if (data.merges.empty()) {
      return absl::InvalidArgumentError("gpt2 tokenizer without tokenizer.ggml.merges");
    }
    TROUPE_ASSIGN_OR_RETURN(PreTokenizerConfig pre, PreTokenizerFromName(data.pre));
    if (data.ignore_merges.has_value()) pre.ignore_merges = *data.ignore_merges;
    pre.nfc = data.nfc;
    TROUPE_ASSIGN_OR_RETURN(Vocab vocab, Vocab::Build(data, /*is_spm=*/false, pre.default_add_bos));
    return std::unique_ptr<Tokenizer>(new BpeTokenizer(std::move(vocab), pre, data.merges));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported tokenizer.ggml.model '", data.model, "' (want llama or gpt2)"));
}

std::string Tokenizer::Decode(const std::vector<TokenId>& ids) const {
  std::string text;
  for (TokenId id : ids) text += TokenBytes(id);
  return text;
}

// ---- streaming ----

std::string StreamingDetokenizer::Push(TokenId id) {
  pending_ += tokenizer_.TokenBytes(id);
  const size_t keep = unicode::IncompleteSuffixLen(pending_);
  std::string ready = SanitizeUtf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamingDetokenizer::Flush() {
  std::string rest = SanitizeUtf8(pending_);
  pending_.clear();
  return rest;
}

// ---- UTF-8 ----

bool IsValidUtf8(std::string_view text) {
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t start = offset;
    // DecodeOne signals an invalid byte by returning U+FFFD after consuming exactly one byte; a
    // real U+FFFD consumes three.
    if (unicode::DecodeOne(text, &offset) == 0xFFFD && offset - start == 1) return false;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t start = offset;
    if (unicode::DecodeOne(text, &offset) == 0xFFFD && offset - start == 1) {
      AppendReplacement(&out);
    } else {
      out.append(text.substr(start, offset - start));
    }
  }
  return out;
}

}  // namespace troupe
