#include "server/openai/openai_response.h"

#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace troupe {
namespace {

using Json = nlohmann::json;

// Client text and token pieces can hold a split UTF-8 character; dump replaces it rather than
// throwing.
std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string DataEvent(const Json& json) { return absl::StrCat("data: ", Dump(json), "\n\n"); }

Json FinishReasonJson(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
    case v1::FINISH_REASON_EOS:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    default:
      return nullptr;
  }
}

const char* ErrorType(int http_status) {
  switch (http_status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      return "server_error";
  }
}

// "chatcmpl-" / "cmpl-" and 24 random hex digits.
std::string NewId(const char* prefix) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return absl::StrFormat("%s%016x%08x", prefix, random(), static_cast<uint32_t>(random()));
}

Json Bytes(const std::string& text) {
  Json bytes = Json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorJson(const absl::Status& status, std::string_view code, int http_status) {
  if (http_status == 0) http_status = HttpStatusFor(status.code());
  const std::string code_name = code.empty() ? absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))
                                             : std::string(code);
  Json error = {{"message", std::string(status.message())},
                {"type", ErrorType(http_status)},
                {"param", nullptr},
                {"code", code_name}};
  return Dump(Json{{"error", std::move(error)}});
}

OpenAiResponder::OpenAiResponder(Options options)
    : options_(std::move(options)),
      id_(NewId(options_.endpoint == Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-")),
      created_(absl::ToUnixSeconds(absl::Now())) {
  if (options_.endpoint == Endpoint::kChatCompletions) {
    logprobs_ = {{"content", Json::array()}};
  } else {
    logprobs_ = {{"tokens", Json::array()},
                 {"token_logprobs", Json::array()},
                 {"top_logprobs", Json::array()},
                 {"text_offset", Json::array()}};
  }
}

Json OpenAiResponder::Envelope(const char* object) const {
  return {{"id", id_}, {"object", object}, {"created", created_}, {"model", options_.model}};
}

Json OpenAiResponder::Usage(const v1::Usage& usage) const {
  return {{"prompt_tokens", usage.prompt_tokens()},
          {"completion_tokens", usage.completion_tokens()},
          {"total_tokens", usage.prompt_tokens() + usage.completion_tokens()},
          // restored_tokens (troupe's own field): of cached_tokens, those copied back from the
          // host KV tier rather than found in the GPU's cache (docs/kv_cache.md "Host tier").
          {"prompt_tokens_details",
           {{"cached_tokens", usage.cached_prompt_tokens()},
            {"restored_tokens", usage.restored_prompt_tokens()}}}};
}

Json OpenAiResponder::Logprobs(const v1::GenerateResponse& message, bool gather) {
  if (options_.logprobs < 0 || !options_.token_text) return nullptr;
  if (options_.endpoint == Endpoint::kChatCompletions) {
    Json content = Json::array();
    for (const v1::TokenLogprobs& chosen : message.logprobs()) {
      const std::string token = options_.token_text(chosen.token_id());
      Json top = Json::array();
      for (const v1::TokenLogprob& alt : chosen.top()) {
        const std::string alt_token = options_.token_text(alt.token_id());
        top.push_back({{"token", alt_token}, {"logprob", alt.logprob()}, {"bytes", Bytes(alt_token)}});
      }
      content.push_back(
          {{"token", token}, {"logprob", chosen.logprob()}, {"bytes", Bytes(token)}, {"top_logprobs", std::move(top)}});
    }
    if (gather) {
      for (const Json& item : content) logprobs_["content"].push_back(item);
    }
    return {{"content", std::move(content)}};
  }
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  for (const v1::TokenLogprobs& chosen : message.logprobs()) {
    const std::string token = options_.token_text(chosen.token_id());
    Json top = Json::object();
    for (const v1::TokenLogprob& alt : chosen.top()) top[options_.token_text(alt.token_id())] = alt.logprob();
    out["tokens"].push_back(token);
    out["token_logprobs"].push_back(chosen.logprob());
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(text_offset_);
    text_offset_ += static_cast<int64_t>(token.size());
  }
  if (gather) {
    for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
      for (const Json& item : out[key]) logprobs_[key].push_back(item);
    }
  }
  return out;
}

std::string OpenAiResponder::Chunk(const v1::GenerateResponse& message) {
  const bool chat = options_.endpoint == Endpoint::kChatCompletions;
  const bool last = message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED;
  std::string events;
  Json choice = {{"index", 0}, {"logprobs", Logprobs(message, /*gather=*/false)},
                 {"finish_reason", FinishReasonJson(message.finish_reason())}};
  if (chat) {
    Json delta = Json::object();
    if (!sent_role_) delta["role"] = "assistant";
    if (!message.text().empty() || !sent_role_) delta["content"] = message.text();
    sent_role_ = true;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = message.text();
  }
  Json chunk = Envelope(chat ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = Json::array({std::move(choice)});
  if (options_.include_usage) chunk["usage"] = nullptr;
  events += DataEvent(chunk);
  if (last && options_.include_usage) {
    Json usage_chunk = Envelope(chat ? "chat.completion.chunk" : "text_completion");
    usage_chunk["choices"] = Json::array();
    usage_chunk["usage"] = Usage(message.usage());
    events += DataEvent(usage_chunk);
  }
  return events;
}

std::string OpenAiResponder::Done() { return "data: [DONE]\n\n"; }

std::string OpenAiResponder::StreamError(const absl::Status& status) {
  return absl::StrCat("data: ", ErrorJson(status), "\n\n", Done());
}

void OpenAiResponder::Add(const v1::GenerateResponse& message) {
  text_ += message.text();
  Logprobs(message, /*gather=*/true);
  if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    finish_reason_ = message.finish_reason();
    usage_ = message.usage();
  }
}

std::string OpenAiResponder::Body() const {
  const bool chat = options_.endpoint == Endpoint::kChatCompletions;
  Json choice = {{"index", 0},
                 {"logprobs", options_.logprobs < 0 ? Json(nullptr) : logprobs_},
                 {"finish_reason", FinishReasonJson(finish_reason_)}};
  if (chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text_}};
  } else {
    choice["text"] = text_;
  }
  Json body = Envelope(chat ? "chat.completion" : "text_completion");
  body["choices"] = Json::array({std::move(choice)});
  body["usage"] = Usage(usage_);
  return Dump(body);
}

}  // namespace troupe
