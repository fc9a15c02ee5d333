#include "server/openai/openai_request.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

using Json = nlohmann::json;

// The value of `key`, or null when it is absent or JSON null (OpenAI clients send null for
// "not set").
const Json* Field(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status TypeError(const std::string& field, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", want));
}

absl::StatusOr<std::optional<double>> Number(const Json& object, const char* key) {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return TypeError(key, "a number");
  return value->get<double>();
}

// An integer in [lo, hi]; 100.0 counts as 100, as JavaScript clients write it.
absl::StatusOr<std::optional<int64_t>> Integer(const Json& object, const char* key, int64_t lo, int64_t hi) {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return TypeError(key, "an integer");
  double d = 0;
  if (value->is_number_unsigned()) {
    const uint64_t u = value->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) {
      return TypeError(key, absl::StrCat("an integer in ", lo, "..", hi));
    }
    return static_cast<int64_t>(u);
  }
  if (value->is_number_integer()) {
    d = static_cast<double>(value->get<int64_t>());
  } else {
    d = value->get<double>();
    if (std::floor(d) != d) return TypeError(key, "an integer");
  }
  // 2^63 is exactly representable; int64's max (2^63 - 1) is not and rounds up to it.
  constexpr double kTwo63 = 9223372036854775808.0;
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi) && d < kTwo63 && d >= -kTwo63)) {
    return TypeError(key, absl::StrCat("an integer in ", lo, "..", hi));
  }
  return value->is_number_integer() ? value->get<int64_t>() : static_cast<int64_t>(d);
}

absl::StatusOr<std::optional<bool>> Bool(const Json& object, const char* key) {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) return TypeError(key, "true or false");
  return value->get<bool>();
}

absl::StatusOr<std::optional<std::string>> String(const Json& object, const char* key) {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return TypeError(key, "a string");
  return value->get<std::string>();
}

// A string or a list of strings (stop, dry_sequence_breakers).
absl::StatusOr<std::optional<std::vector<std::string>>> Strings(const Json& object, const char* key) {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) return std::vector<std::string>{value->get<std::string>()};
  if (!value->is_array()) return TypeError(key, "a string or a list of strings");
  std::vector<std::string> strings;
  for (const Json& item : *value) {
    if (!item.is_string()) return TypeError(key, "a string or a list of strings");
    strings.push_back(item.get<std::string>());
  }
  return strings;
}

absl::StatusOr<Json> ParseObject(std::string_view body) {
  if (!JsonWithinDepth(body)) {
    return absl::InvalidArgumentError(absl::StrCat("the body nests deeper than ", kMaxJsonDepth, " levels"));
  }
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  return json;
}

// A field troupe does not implement, refused when set to anything but its neutral value, so a
// client never believes it took effect.
absl::Status Unsupported(const Json& body, const char* key, const std::function<bool(const Json&)>& neutral) {
  const Json* value = Field(body, key);
  if (value == nullptr || neutral(*value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(key, ": not supported by troupe"));
}

bool IsEmptyContainer(const Json& value) { return (value.is_array() || value.is_object()) && value.empty(); }

// The sampling fields both endpoints share, into `proto` (unset ones stay unset).
absl::Status ReadSampling(const Json& body, v1::SamplingParams& proto) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  const auto set_float = [&](const char* key, void (v1::SamplingParams::*set)(float)) -> absl::Status {
    TROUPE_ASSIGN_OR_RETURN(const std::optional<double> value, Number(body, key));
    if (value) {
      // Beyond float's range the cast is undefined; infinity fails the range checks instead.
      constexpr double kMax = std::numeric_limits<float>::max();
      const float f = *value > kMax    ? std::numeric_limits<float>::infinity()
                      : *value < -kMax ? -std::numeric_limits<float>::infinity()
                                       : static_cast<float>(*value);
      (proto.*set)(f);
    }
    return absl::OkStatus();
  };
  TROUPE_RETURN_IF_ERROR(set_float("temperature", &v1::SamplingParams::set_temperature));
  TROUPE_RETURN_IF_ERROR(set_float("top_p", &v1::SamplingParams::set_top_p));
  TROUPE_RETURN_IF_ERROR(set_float("min_p", &v1::SamplingParams::set_min_p));
  TROUPE_RETURN_IF_ERROR(set_float("repetition_penalty", &v1::SamplingParams::set_repetition_penalty));
  TROUPE_RETURN_IF_ERROR(set_float("presence_penalty", &v1::SamplingParams::set_presence_penalty));
  TROUPE_RETURN_IF_ERROR(set_float("frequency_penalty", &v1::SamplingParams::set_frequency_penalty));
  TROUPE_RETURN_IF_ERROR(set_float("dry_multiplier", &v1::SamplingParams::set_dry_multiplier));
  TROUPE_RETURN_IF_ERROR(set_float("dry_base", &v1::SamplingParams::set_dry_base));
  TROUPE_RETURN_IF_ERROR(set_float("xtc_probability", &v1::SamplingParams::set_xtc_probability));
  TROUPE_RETURN_IF_ERROR(set_float("xtc_threshold", &v1::SamplingParams::set_xtc_threshold));

  // vLLM's top_k: -1 (or 0) = off.
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> top_k, Integer(body, "top_k", -1, kInt32Max));
  if (top_k) proto.set_top_k(static_cast<int32_t>(std::max<int64_t>(*top_k, 0)));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> last_n, Integer(body, "penalty_last_n", -1, kInt32Max));
  if (last_n) proto.set_penalty_last_n(static_cast<int32_t>(*last_n));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> allowed, Integer(body, "dry_allowed_length", 0, kInt32Max));
  if (allowed) proto.set_dry_allowed_length(static_cast<int32_t>(*allowed));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> dry_n, Integer(body, "dry_penalty_last_n", -1, kInt32Max));
  if (dry_n) proto.set_dry_penalty_last_n(static_cast<int32_t>(*dry_n));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> seed, Integer(body, "seed", std::numeric_limits<int64_t>::min(),
                                                                     std::numeric_limits<int64_t>::max()));
  if (seed) proto.set_seed(static_cast<uint64_t>(*seed));
  // max_completion_tokens is OpenAI's newer name; either works.
  TROUPE_ASSIGN_OR_RETURN(std::optional<int64_t> max_tokens, Integer(body, "max_completion_tokens", 1, kInt32Max));
  if (!max_tokens) {
    TROUPE_ASSIGN_OR_RETURN(max_tokens, Integer(body, "max_tokens", 1, kInt32Max));
  }
  if (max_tokens) proto.set_max_tokens(static_cast<int32_t>(*max_tokens));

  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::vector<std::string>> stop, Strings(body, "stop"));
  if (stop) {
    for (const std::string& s : *stop) proto.add_stop(s);
  }
  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::vector<std::string>> breakers,
                          Strings(body, "dry_sequence_breakers"));
  if (breakers) {
    for (const std::string& s : *breakers) proto.mutable_dry_sequence_breakers()->add_values(s);
  }
  TROUPE_ASSIGN_OR_RETURN(const std::optional<bool> ignore_eos, Bool(body, "ignore_eos"));
  if (ignore_eos) proto.set_ignore_eos(*ignore_eos);

  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> n, Integer(body, "n", 1, kInt32Max));
  if (n && *n != 1) return absl::InvalidArgumentError("n: troupe returns one choice per request (n must be 1)");
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "logit_bias", IsEmptyContainer));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "typical_p", [](const Json& v) { return v.is_number() && v.get<double>() == 1.0; }));
  return absl::OkStatus();
}

// The chat preset, for the fields a chat completion left unset.
void FillChatDefaults(const SamplingParams& d, v1::SamplingParams& proto) {
  const SamplingParams plain;
  if (!proto.has_temperature()) proto.set_temperature(d.temperature);
  if (!proto.has_top_k()) proto.set_top_k(d.top_k);
  if (!proto.has_top_p()) proto.set_top_p(d.top_p);
  if (!proto.has_min_p()) proto.set_min_p(d.min_p);
  if (!proto.has_repetition_penalty()) proto.set_repetition_penalty(d.repetition_penalty);
  if (!proto.has_presence_penalty()) proto.set_presence_penalty(d.presence_penalty);
  if (!proto.has_frequency_penalty()) proto.set_frequency_penalty(d.frequency_penalty);
  if (!proto.has_penalty_last_n()) proto.set_penalty_last_n(d.penalty_last_n);
  if (!proto.has_max_tokens()) proto.set_max_tokens(d.max_tokens);
  if (!proto.has_dry_multiplier()) proto.set_dry_multiplier(d.dry_multiplier);
  if (!proto.has_dry_base()) proto.set_dry_base(d.dry_base);
  if (!proto.has_dry_allowed_length()) proto.set_dry_allowed_length(d.dry_allowed_length);
  if (!proto.has_dry_penalty_last_n()) proto.set_dry_penalty_last_n(d.dry_penalty_last_n);
  if (!proto.has_dry_sequence_breakers() && d.dry_sequence_breakers != plain.dry_sequence_breakers) {
    for (const std::string& s : d.dry_sequence_breakers) proto.mutable_dry_sequence_breakers()->add_values(s);
  }
  if (!proto.has_xtc_probability()) proto.set_xtc_probability(d.xtc_probability);
  if (!proto.has_xtc_threshold()) proto.set_xtc_threshold(d.xtc_threshold);
  if (proto.stop_size() == 0) {
    for (const std::string& s : d.stop) proto.add_stop(s);
  }
}

absl::StatusOr<v1::Role> RoleFromOpenAi(const std::string& role, size_t i) {
  if (role == "system" || role == "developer") return v1::ROLE_SYSTEM;
  if (role == "user") return v1::ROLE_USER;
  if (role == "assistant") return v1::ROLE_ASSISTANT;
  return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role: \"", role,
                                                 "\" is not supported (system, developer, user or assistant)"));
}

// A message's content: a string, or a list of text parts (joined by newlines, as vLLM does).
absl::StatusOr<std::string> ContentText(const Json& message, size_t i) {
  const Json* content = Field(message, "content");
  const std::string field = absl::StrCat("messages[", i, "].content");
  if (content == nullptr) return TypeError(field, "a string or a list of text parts");
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) return TypeError(field, "a string or a list of text parts");
  std::string text;
  for (size_t p = 0; p < content->size(); ++p) {
    const Json& part = (*content)[p];
    const Json* type = part.is_object() ? Field(part, "type") : nullptr;
    const Json* part_text = part.is_object() ? Field(part, "text") : nullptr;
    if (type == nullptr || *type != "text" || part_text == nullptr || !part_text->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", p, "]: only {\"type\": \"text\", \"text\": ...} parts are supported"));
    }
    if (p > 0) text += "\n";
    text += part_text->get<std::string>();
  }
  return text;
}

absl::Status ReadCommon(const Json& body, OpenAiCall& call) {
  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> model, String(body, "model"));
  if (model) call.model = *model;
  TROUPE_ASSIGN_OR_RETURN(const std::optional<bool> stream, Bool(body, "stream"));
  call.stream = stream.value_or(false);
  if (const Json* options = Field(body, "stream_options")) {
    if (!options->is_object()) return TypeError("stream_options", "an object");
    TROUPE_ASSIGN_OR_RETURN(const std::optional<bool> usage, Bool(*options, "include_usage"));
    call.include_usage = usage.value_or(false);
  }
  return absl::OkStatus();
}

// priority and cache_salt, troupe's own, on either request.
template <typename Request>
absl::Status ReadRouting(const Json& body, Request& request) {
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> priority,
                          Integer(body, "priority", std::numeric_limits<int32_t>::min(),
                                  std::numeric_limits<int32_t>::max()));
  if (priority) request.set_priority(static_cast<int32_t>(*priority));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> salt, String(body, "cache_salt"));
  if (salt) request.set_cache_salt(*salt);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiCall> ParseChatCompletion(std::string_view body_text, const OpenAiRequestOptions& options) {
  TROUPE_ASSIGN_OR_RETURN(const Json body, ParseObject(body_text));
  OpenAiCall call;
  TROUPE_RETURN_IF_ERROR(ReadCommon(body, call));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "tools", IsEmptyContainer));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "functions", IsEmptyContainer));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "response_format", [](const Json& v) {
    return v.is_object() && v.contains("type") && v["type"] == "text";
  }));

  v1::SamplingParams sampling;
  TROUPE_RETURN_IF_ERROR(ReadSampling(body, sampling));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<bool> logprobs, Bool(body, "logprobs"));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> top_logprobs, Integer(body, "top_logprobs", 0, 20));
  if (top_logprobs && *top_logprobs > 0 && !logprobs.value_or(false)) {
    return absl::InvalidArgumentError("top_logprobs: needs \"logprobs\": true");
  }
  if (logprobs.value_or(false)) {
    sampling.set_logprobs(true);
    sampling.set_top_logprobs(static_cast<int32_t>(top_logprobs.value_or(0)));
    call.logprobs = static_cast<int>(top_logprobs.value_or(0));
  }
  FillChatDefaults(options.chat_defaults, sampling);

  const Json* messages = Field(body, "messages");
  if (messages == nullptr || !messages->is_array() || messages->empty()) {
    return absl::InvalidArgumentError("messages: must be a non-empty list of messages");
  }
  std::vector<std::pair<v1::Role, std::string>> turns;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& message = (*messages)[i];
    if (!message.is_object()) return TypeError(absl::StrCat("messages[", i, "]"), "an object");
    TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> role, String(message, "role"));
    if (!role) return TypeError(absl::StrCat("messages[", i, "].role"), "a string");
    TROUPE_ASSIGN_OR_RETURN(const v1::Role proto_role, RoleFromOpenAi(*role, i));
    TROUPE_ASSIGN_OR_RETURN(std::string content, ContentText(message, i));
    turns.emplace_back(proto_role, std::move(content));
  }

  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> session_id, String(body, "session_id"));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> character_id, String(body, "character_id"));
  TROUPE_ASSIGN_OR_RETURN(const std::optional<std::string> user_name, String(body, "user_name"));
  if (session_id && !session_id->empty()) {
    if (character_id && !character_id->empty()) {
      return absl::InvalidArgumentError("character_id: a session already has its character; set one of session_id and character_id");
    }
    if (turns.back().first != v1::ROLE_USER) {
      return absl::InvalidArgumentError("messages: with session_id the last message must be the user's");
    }
    call.kind = OpenAiCall::Kind::kChat;
    call.chat.set_session_id(*session_id);
    call.chat.set_message(turns.back().second);
    *call.chat.mutable_sampling() = std::move(sampling);
    TROUPE_RETURN_IF_ERROR(ReadRouting(body, call.chat));
    return call;
  }
  call.kind = OpenAiCall::Kind::kGenerate;
  for (auto& [role, content] : turns) {
    v1::PromptMessage* message = call.generate.add_messages();
    message->set_role(role);
    message->set_content(std::move(content));
  }
  if (character_id) call.generate.set_character_id(*character_id);
  if (user_name) {
    if (!character_id || character_id->empty()) return absl::InvalidArgumentError("user_name: needs character_id");
    call.generate.set_user_name(*user_name);
  }
  *call.generate.mutable_sampling() = std::move(sampling);
  TROUPE_RETURN_IF_ERROR(ReadRouting(body, call.generate));
  return call;
}

absl::StatusOr<OpenAiCall> ParseCompletion(std::string_view body_text) {
  TROUPE_ASSIGN_OR_RETURN(const Json body, ParseObject(body_text));
  OpenAiCall call;
  TROUPE_RETURN_IF_ERROR(ReadCommon(body, call));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "echo", [](const Json& v) { return v == false; }));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "suffix", [](const Json& v) { return v == ""; }));
  TROUPE_RETURN_IF_ERROR(Unsupported(body, "best_of", [](const Json& v) { return v == 1; }));

  v1::SamplingParams sampling;
  TROUPE_RETURN_IF_ERROR(ReadSampling(body, sampling));
  if (!sampling.has_max_tokens()) sampling.set_max_tokens(16);  // OpenAI's default for completions
  TROUPE_ASSIGN_OR_RETURN(const std::optional<int64_t> logprobs, Integer(body, "logprobs", 0, 20));
  if (logprobs) {
    sampling.set_logprobs(true);
    sampling.set_top_logprobs(static_cast<int32_t>(*logprobs));
    call.logprobs = static_cast<int>(*logprobs);
  }

  const Json* prompt = Field(body, "prompt");
  constexpr char kPromptShape[] = "a string, a list of one string, or a list of token ids";
  if (prompt == nullptr) return TypeError("prompt", kPromptShape);
  const Json* one = prompt;
  if (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
    one = &(*prompt)[0];
  }
  if (one->is_string()) {
    call.generate.set_prompt(one->get<std::string>());
  } else if (one->is_array() && !one->empty()) {
    for (const Json& id : *one) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return TypeError("prompt", kPromptShape);
      }
      call.generate.add_prompt_token_ids(static_cast<int32_t>(id.get<int64_t>()));
    }
  } else {
    return TypeError("prompt", kPromptShape);
  }
  *call.generate.mutable_sampling() = std::move(sampling);
  TROUPE_RETURN_IF_ERROR(ReadRouting(body, call.generate));
  return call;
}

}  // namespace troupe
