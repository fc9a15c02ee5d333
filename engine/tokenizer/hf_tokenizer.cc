// tokenizer.json + tokenizer_config.json + generation_config.json -> VocabData.
//
// The pre-tokenizer is recognised by its structure and split regex and mapped to the
// llama.cpp pre-tokenizer name troupe implements by hand (engine/tokenizer/pretokenizer.h);
// a regex troupe does not implement is refused rather than approximated.
#include "engine/tokenizer/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/formats/json_file.h"

namespace troupe {
namespace {

// The split rules of the byte-level families, as tokenizer.json spells them.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

absl::Status Unsupported(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string TypeOf(const nlohmann::json& j) {
  if (!j.is_object()) return "";
  const auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A ByteLevel pre-tokenizer: its own GPT-2 regex on (use_regex) or off. add_prefix_space, which
// would put a space in front of the text, is not implemented.
absl::StatusOr<bool> ByteLevelUsesRegex(const nlohmann::json& j, const std::string& path) {
  TROUPE_ASSIGN_OR_RETURN(const bool prefix, JsonBoolOr(j, path, "add_prefix_space", false));
  if (prefix) return Unsupported(path, "ByteLevel add_prefix_space = true is not supported");
  return JsonBoolOr(j, path, "use_regex", true);
}

// Maps pre_tokenizer to the name PreTokenizerFromName knows.
absl::StatusOr<std::string> PreTokenizerName(const nlohmann::json& pre, const std::string& path) {
  const std::string type = TypeOf(pre);
  if (type == "ByteLevel") {
    TROUPE_ASSIGN_OR_RETURN(const bool regex, ByteLevelUsesRegex(pre, path));
    if (regex) return std::string("gpt-2");
    return Unsupported(path, "a ByteLevel pre-tokenizer without a split rule is not supported");
  }
  if (type != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array() ||
      pre["pretokenizers"].size() != 2) {
    return Unsupported(path, absl::StrCat("pre_tokenizer ", pre.dump().substr(0, 200),
                                          " is not supported (troupe reads byte-level BPE with "
                                          "the GPT-2, SmolLM2, Llama 3 or Qwen2 split rules)"));
  }
  const nlohmann::json& first = pre["pretokenizers"][0];
  const nlohmann::json& second = pre["pretokenizers"][1];
  if (TypeOf(second) != "ByteLevel") {
    return Unsupported(path, "a pre_tokenizer Sequence must end in ByteLevel");
  }
  TROUPE_ASSIGN_OR_RETURN(const bool byte_level_regex, ByteLevelUsesRegex(second, path));
  if (TypeOf(first) == "Digits") {
    TROUPE_ASSIGN_OR_RETURN(const bool individual,
                            JsonBoolOr(first, path, "individual_digits", false));
    if (individual && byte_level_regex) return std::string("smollm");
    return Unsupported(path, "Digits must be individual_digits and followed by ByteLevel's regex");
  }
  if (TypeOf(first) == "Split" && !byte_level_regex) {
    const auto pattern = first.find("pattern");
    const nlohmann::json* regex = nullptr;
    if (pattern != first.end() && pattern->is_object() && pattern->contains("Regex")) {
      regex = &(*pattern)["Regex"];
    }
    TROUPE_ASSIGN_OR_RETURN(const std::string behavior,
                            JsonStringOr(first, path, "behavior", ""));
    TROUPE_ASSIGN_OR_RETURN(const bool invert, JsonBoolOr(first, path, "invert", false));
    if (regex != nullptr && regex->is_string() && behavior == "Isolated" && !invert) {
      const std::string r = regex->get<std::string>();
      if (r == kLlama3Regex) return std::string("llama3");
      if (r == kQwen2Regex) return std::string("qwen2");
      if (r == kGpt2Regex) return std::string("gpt-2");
      return Unsupported(path, absl::StrCat("the split regex ", r.substr(0, 200),
                                            " is not one troupe implements (GPT-2, Llama 3, "
                                            "Qwen2)"));
    }
  }
  return Unsupported(path, absl::StrCat("pre_tokenizer ", pre.dump().substr(0, 200),
                                        " is not supported"));
}

// A special-token entry of tokenizer_config.json: "text" or {"content": "text", ...}.
std::optional<std::string> TokenText(const nlohmann::json& config, const char* key) {
  if (!config.is_object()) return std::nullopt;
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<nlohmann::json>> ReadOptional(const std::string& path) {
  return ReadJsonFile(path, JsonRoot::kObject);
}

const nlohmann::json& Member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json* null = new nlohmann::json();
  if (!j.is_object()) return *null;
  const auto it = j.find(key);
  return it == j.end() ? *null : *it;
}

// tokenizer.json's legacy SentencePiece normalizer: Prepend("▁") then Replace(" ", "▁").
bool IsLegacySpmNormalizer(const nlohmann::json& n) {
  if (TypeOf(n) != "Sequence") return false;
  const nlohmann::json& parts = Member(n, "normalizers");
  if (!parts.is_array() || parts.size() != 2) return false;
  const nlohmann::json& prepend = parts[0];
  const nlohmann::json& replace = parts[1];
  return TypeOf(prepend) == "Prepend" && Member(prepend, "prepend") == "\u2581" &&
         TypeOf(replace) == "Replace" && Member(Member(replace, "pattern"), "String") == " " &&
         Member(replace, "content") == "\u2581";
}

// The tokenizer's shape: byte-level BPE ("gpt2": a pre-tokenizer ending in ByteLevel, no
// normalizer or NFC) or SentencePiece-style BPE ("llama": "▁" for spaces, from the legacy
// normalizer or a Metaspace pre-tokenizer, usually with byte_fallback).
absl::Status ReadShape(const nlohmann::json& tokenizer, bool byte_fallback,
                       const std::string& path, VocabData& data) {
  const nlohmann::json& normalizer = Member(tokenizer, "normalizer");
  const nlohmann::json& pre = Member(tokenizer, "pre_tokenizer");
  const bool legacy = IsLegacySpmNormalizer(normalizer);
  if (legacy || TypeOf(pre) == "Metaspace" || byte_fallback) {
    data.model = "llama";
    if (legacy && pre.is_null()) {
      data.add_space_prefix = true;  // prepended to every fragment, as llama.cpp does
      return absl::OkStatus();
    }
    if (normalizer.is_null() && TypeOf(pre) == "Metaspace") {
      TROUPE_ASSIGN_OR_RETURN(const std::string replacement,
                              JsonStringOr(pre, path, "replacement", "\u2581"));
      if (replacement != "\u2581") {
        return Unsupported(path, "a Metaspace replacement other than \"\u2581\"");
      }
      TROUPE_ASSIGN_OR_RETURN(data.prepend_scheme,
                              JsonStringOr(pre, path, "prepend_scheme", "always"));
      if (data.prepend_scheme != "first" && data.prepend_scheme != "always" &&
          data.prepend_scheme != "never") {
        return Unsupported(path, absl::StrCat("Metaspace prepend_scheme '", data.prepend_scheme,
                                              "' is not supported"));
      }
      data.add_space_prefix = data.prepend_scheme != "never";
      TROUPE_ASSIGN_OR_RETURN(data.split_words, JsonBoolOr(pre, path, "split", true));
      return absl::OkStatus();
    }
    return Unsupported(path, absl::StrCat("SentencePiece-style BPE with normalizer ",
                                          normalizer.dump().substr(0, 120), " and pre_tokenizer ",
                                          pre.dump().substr(0, 120),
                                          " is not supported (troupe reads the legacy Prepend + "
                                          "Replace normalizer or a Metaspace pre-tokenizer)"));
  }
  data.model = "gpt2";
  data.nfc = TypeOf(normalizer) == "NFC";
  if (!normalizer.is_null() && !data.nfc) {
    return Unsupported(path, absl::StrCat("normalizer ", normalizer.dump().substr(0, 200),
                                          " is not supported"));
  }
  if (pre.is_null()) return Unsupported(path, "a byte-level BPE without a pre_tokenizer");
  TROUPE_ASSIGN_OR_RETURN(data.pre, PreTokenizerName(pre, path));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VocabData> VocabFromTokenizerJson(const nlohmann::json& tokenizer,
                                                 const nlohmann::json& tokenizer_config,
                                                 const nlohmann::json& generation_config,
                                                 const std::string& path) {
  const auto model_it = tokenizer.find("model");
  if (model_it == tokenizer.end() || !model_it->is_object()) {
    return Unsupported(path, "no model object");
  }
  const nlohmann::json& model = *model_it;
  if (TypeOf(model) != "BPE") {
    return Unsupported(path, absl::StrCat("model type '", TypeOf(model),
                                          "' is not supported (troupe reads BPE)"));
  }
  TROUPE_ASSIGN_OR_RETURN(const bool byte_fallback,
                          JsonBoolOr(model, path, "byte_fallback", false));
  VocabData data;
  data.specials_explicit = true;
  TROUPE_RETURN_IF_ERROR(ReadShape(tokenizer, byte_fallback, path, data));
  TROUPE_ASSIGN_OR_RETURN(const bool ignore_merges,
                          JsonBoolOr(model, path, "ignore_merges", false));
  data.ignore_merges = ignore_merges;

  // Tokens by id: the model's vocabulary, then the added tokens (which may reuse an id).
  const auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object() || vocab_it->empty()) {
    return Unsupported(path, "model.vocab is missing or empty");
  }
  constexpr int64_t kMaxVocab = 1 << 24;
  auto place = [&](int64_t id, const std::string& text, int32_t type) -> absl::Status {
    if (id < 0 || id >= kMaxVocab) {
      return Unsupported(path, absl::StrCat("token '", text.substr(0, 64), "' has id ", id));
    }
    if (static_cast<size_t>(id) >= data.tokens.size()) {
      data.tokens.resize(id + 1);
      data.token_types.resize(id + 1, 1);
    }
    data.tokens[id] = text;
    data.token_types[id] = type;
    return absl::OkStatus();
  };
  for (const auto& [text, id] : vocab_it->items()) {
    if (!id.is_number_integer()) return Unsupported(path, "model.vocab ids must be integers");
    TROUPE_RETURN_IF_ERROR(place(id.get<int64_t>(), text, /*normal=*/1));
  }
  const auto added = tokenizer.find("added_tokens");
  if (added != tokenizer.end() && added->is_array()) {
    for (const nlohmann::json& t : *added) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string()) {
        return Unsupported(path, "an added_tokens entry lacks an integer id or a content");
      }
      TROUPE_ASSIGN_OR_RETURN(const bool special, JsonBoolOr(t, path, "special", false));
      // Special added tokens are control tokens (never rendered, matched only in template
      // text); the others are user-defined (always matched, rendered as text).
      TROUPE_RETURN_IF_ERROR(
          place(t["id"].get<int64_t>(), t["content"].get<std::string>(), special ? 3 : 4));
    }
  }

  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) {
    return Unsupported(path, "model.merges is missing");
  }
  data.merges.reserve(merges->size());
  for (const nlohmann::json& m : *merges) {
    // tokenizers < 0.20 writes "left right", later releases ["left", "right"].
    if (m.is_string()) {
      data.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      data.merges.push_back(absl::StrCat(m[0].get<std::string>(), " ", m[1].get<std::string>()));
    } else {
      return Unsupported(path, "a model.merges entry is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  auto id_of = [&](const std::optional<std::string>& text) -> std::optional<int64_t> {
    if (!text.has_value()) return std::nullopt;
    for (size_t i = 0; i < data.tokens.size(); ++i) {
      if (data.tokens[i] == *text) return static_cast<int64_t>(i);
    }
    return std::nullopt;
  };
  data.bos_id = id_of(TokenText(tokenizer_config, "bos_token"));
  data.eos_id = id_of(TokenText(tokenizer_config, "eos_token"));
  data.unk_id = id_of(TokenText(tokenizer_config, "unk_token"));
  if (!data.unk_id.has_value() && model.contains("unk_token") && model["unk_token"].is_string()) {
    data.unk_id = id_of(model["unk_token"].get<std::string>());
  }
  // BOS: what the post-processor puts in front of a single text, else tokenizer_config.json's
  // add_bos_token, else none (byte-level models rarely want one).
  data.add_bos = false;
  const auto post = tokenizer.find("post_processor");
  bool post_decides = false;
  if (post != tokenizer.end() && TypeOf(*post) == "TemplateProcessing" &&
      post->contains("single") && (*post)["single"].is_array()) {
    post_decides = true;
    const nlohmann::json& single = (*post)["single"];
    if (!single.empty() && single[0].is_object() && single[0].contains("SpecialToken")) {
      const nlohmann::json& special = single[0]["SpecialToken"];
      if (special.is_object() && special.contains("id") && special["id"].is_string()) {
        const std::optional<int64_t> bos = id_of(special["id"].get<std::string>());
        if (!bos.has_value()) {
          return Unsupported(path, "the post_processor's first special token is not a token");
        }
        data.bos_id = bos;
        data.add_bos = true;
      }
    }
  }
  if (!post_decides && tokenizer_config.is_object()) {
    TROUPE_ASSIGN_OR_RETURN(data.add_bos,
                            JsonBoolOr(tokenizer_config, path, "add_bos_token", false));
  }
  // SentencePiece-style: <0xXX> tokens are the byte fallback, the unknown token is unknown.
  if (data.model == "llama") {
    for (size_t i = 0; i < data.tokens.size(); ++i) {
      const std::string& t = data.tokens[i];
      if (data.token_types[i] == 1 && t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>') {
        data.token_types[i] = 6;
      }
    }
    if (data.unk_id.has_value()) data.token_types[*data.unk_id] = 2;
  }
  // generation_config.json's eos_token_id (one id or a list) ends generation too.
  if (generation_config.is_object() && generation_config.contains("eos_token_id")) {
    const nlohmann::json& eos = generation_config["eos_token_id"];
    std::vector<int64_t> ids;
    if (eos.is_number_integer()) ids.push_back(eos.get<int64_t>());
    if (eos.is_array()) {
      for (const nlohmann::json& e : eos) {
        if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
      }
    }
    for (int64_t id : ids) {
      if (id == data.eos_id) continue;
      if (!data.eos_id.has_value()) {
        data.eos_id = id;
      } else if (!data.eot_id.has_value()) {
        data.eot_id = id;
      } else if (!data.eom_id.has_value()) {
        data.eom_id = id;
      }
    }
  }
  return data;
}

absl::StatusOr<HfTokenizerFiles> ReadHfTokenizerFiles(const std::string& dir) {
  const std::filesystem::path root(dir);
  const std::string path = (root / "tokenizer.json").string();
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> tokenizer, ReadOptional(path));
  if (!tokenizer.has_value()) {
    return absl::NotFoundError(absl::StrCat(
        path, ": not found (troupe reads a Hugging Face folder's tokenizer from tokenizer.json)"));
  }
  const std::string config_path = (root / "tokenizer_config.json").string();
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> config, ReadOptional(config_path));
  TROUPE_ASSIGN_OR_RETURN(std::optional<nlohmann::json> generation,
                          ReadOptional((root / "generation_config.json").string()));
  HfTokenizerFiles files;
  TROUPE_ASSIGN_OR_RETURN(
      files.vocab, VocabFromTokenizerJson(*tokenizer, config.value_or(nlohmann::json()),
                                          generation.value_or(nlohmann::json()), path));
  // The chat template: tokenizer_config.json's chat_template (a string, or a list of named
  // templates of which "default" is used), else chat_template.jinja (transformers 5 writes it).
  if (config.has_value() && config->contains("chat_template")) {
    const nlohmann::json& t = (*config)["chat_template"];
    if (t.is_string()) files.chat_template = t.get<std::string>();
    if (t.is_array()) {
      for (const nlohmann::json& named : t) {
        if (named.is_object() && named.value("name", "") == "default" &&
            named.contains("template") && named["template"].is_string()) {
          files.chat_template = named["template"].get<std::string>();
        }
      }
    }
  }
  if (files.chat_template.empty()) {
    std::ifstream in(root / "chat_template.jinja", std::ios::binary);
    if (in) {
      files.chat_template.assign(std::istreambuf_iterator<char>(in),
                                 std::istreambuf_iterator<char>());
    }
  }
  return files;
}

}  // namespace troupe
