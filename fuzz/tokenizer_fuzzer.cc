// Fuzzes the tokenizers (engine/tokenizer) with arbitrary bytes as text, on two real
// vocabularies: SmolLM2's GPT-2 byte-level BPE (models/, scripts/fetch-model.sh) and
// stories260K's SentencePiece (../shared/models). First byte: bit 0 = parse_special, bit 1 =
// add_bos; the rest is the text. Asserted, besides "no crash":
//   - every id is inside the vocabulary;
//   - round trip, where it must hold (parse_special off, valid UTF-8, and every byte of the
//     text has a token to fall back to): BPE decodes to the text exactly; SentencePiece to the
//     text with its one added leading space, for text without U+2581 (SentencePiece's own space
//     mark, which decodes to a space by design). A byte without a token of its own is dropped
//     as llama.cpp drops it (bpe_tokenizer.cc): SmolLM2's vocabulary lacks a few control
//     bytes, e.g. 0x04 (fuzz/corpus/tokenizer/regression-unrepresentable-byte);
//   - the streaming detokenizer's deltas are valid UTF-8, and they concatenate to Decode(ids)
//     whenever that is valid UTF-8 (tokenizer.h).
// TROUPE_FUZZ_SMOLLM2 and TROUPE_FUZZ_STORIES override the model paths.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/check.h"
#include "engine/formats/gguf.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/unicode.h"

namespace troupe {
namespace {

struct Loaded {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
  // Bytes that survive encoding on their own: BPE has a token for the byte's byte-level
  // character; SentencePiece a <0xXX> byte token or the raw byte as a token.
  std::array<bool, 256> byte_has_token{};
};

std::array<bool, 256> BytesWithTokens(const Tokenizer& tokenizer) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::array<bool, 256> has{};
  for (int b = 0; b < 256; ++b) {
    const std::string byte(1, static_cast<char>(b));
    if (tokenizer.kind() == Tokenizer::Kind::kBytePairGpt2) {
      std::string encoded;
      unicode::AppendByteEncoded(byte, &encoded);
      has[b] = tokenizer.Find(encoded) >= 0;
    } else {
      const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
      has[b] = tokenizer.Find(name) >= 0 || tokenizer.Find(byte) >= 0;
    }
  }
  return has;
}

Loaded Load(const char* env, const std::string& fallback) {
  const char* path = std::getenv(env);
  const std::string p = path ? path : fallback;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(p);
  TROUPE_CHECK_MSG(file.ok(), "%s (set %s)", std::string(file.status().message()).c_str(), env);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromGguf(**file);
  TROUPE_CHECK_MSG(tokenizer.ok(), "%s: %s", p.c_str(),
                   std::string(tokenizer.status().message()).c_str());
  const std::array<bool, 256> has = BytesWithTokens(**tokenizer);
  return {std::move(*file), std::move(*tokenizer), has};
}

void CheckStreaming(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  StreamingDetokenizer stream(tokenizer);
  std::string streamed;
  for (TokenId id : ids) {
    const std::string delta = stream.Push(id);
    TROUPE_CHECK(IsValidUtf8(delta));
    streamed += delta;
  }
  const std::string tail = stream.Flush();
  TROUPE_CHECK(IsValidUtf8(tail));
  streamed += tail;
  const std::string decoded = tokenizer.Decode(ids);
  if (IsValidUtf8(decoded)) TROUPE_CHECK_MSG(streamed == decoded, "streamed text differs");
}

void CheckOne(const Loaded& loaded, std::string_view text, bool parse_special, bool add_bos) {
  const Tokenizer& tokenizer = *loaded.tokenizer;
  const std::vector<TokenId> ids = tokenizer.Encode(text, add_bos, parse_special);
  for (TokenId id : ids) TROUPE_CHECK(id >= 0 && id < tokenizer.vocab_size());
  CheckStreaming(tokenizer, ids);
  if (parse_special || add_bos || !IsValidUtf8(text)) return;
  for (char c : text) {
    if (!loaded.byte_has_token[static_cast<uint8_t>(c)]) return;
  }
  const std::string decoded = tokenizer.Decode(ids);
  if (tokenizer.kind() == Tokenizer::Kind::kBytePairGpt2) {
    TROUPE_CHECK_MSG(decoded == text, "BPE round trip lost bytes");
  } else if (text.find("\xE2\x96\x81") == std::string_view::npos && !text.empty()) {
    std::string want = " ";  // the space SentencePiece adds in front
    want.append(text);
    TROUPE_CHECK_MSG(decoded == want, "SentencePiece round trip lost bytes");
  }
}

}  // namespace
}  // namespace troupe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const troupe::Loaded* bpe = new troupe::Loaded(troupe::Load(
      "TROUPE_FUZZ_SMOLLM2", TROUPE_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
  static const troupe::Loaded* spm = new troupe::Loaded(
      troupe::Load("TROUPE_FUZZ_STORIES", TROUPE_SHARED_DIR "/models/stories260K.gguf"));
  if (size == 0) return 0;
  const bool parse_special = data[0] & 1;
  const bool add_bos = data[0] & 2;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  troupe::CheckOne(*bpe, text, parse_special, add_bos);
  troupe::CheckOne(*spm, text, parse_special, add_bos);
  return 0;
}
