// The OpenAI-compatible HTTP API's response bodies, written from the RolePlay service's
// streamed messages: chat.completion / text_completion objects, their server-sent-event chunks,
// usage with cached prompt tokens, logprobs in each endpoint's shape, and errors in OpenAI's
// {"error": {...}} shape with their HTTP codes. Not thread-safe; one per HTTP request.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// The HTTP status of a failed call: kInvalidArgument, kOutOfRange and kFailedPrecondition 400,
// kUnauthenticated 401, kPermissionDenied 403, kNotFound 404, kAborted and kAlreadyExists 409,
// kResourceExhausted 429, kUnimplemented 501, kUnavailable 503, kDeadlineExceeded 504, the
// rest 500.
int HttpStatusFor(absl::StatusCode code);

// {"error": {"message", "type", "param", "code"}}: type is OpenAI's for the HTTP status
// ("invalid_request_error", "authentication_error", "rate_limit_error", ...), code the gRPC
// code's name in lower case ("invalid_argument"), or `code` when given.
// `http_status` picks the type (0: HttpStatusFor(status.code())).
std::string ErrorJson(const absl::Status& status, std::string_view code = "", int http_status = 0);

// Writes one request's answer, streamed (Chunk for each message, then Done) or whole (Add for
// each message, then Body).
class OpenAiResponder {
 public:
  enum class Endpoint { kChatCompletions, kCompletions };
  struct Options {
    Endpoint endpoint = Endpoint::kChatCompletions;
    std::string model;            // echoed as "model"
    bool include_usage = false;   // streamed: a last chunk with the usage and no choices
    int logprobs = -1;            // -1 = none; else the top_logprobs count
    // The text of one token id, for logprobs ("token" fields). Required when logprobs >= 0.
    std::function<std::string(int32_t)> token_text;
  };

  explicit OpenAiResponder(Options options);

  // Server-sent events ("data: {...}\n\n", one or more) for one streamed message: the
  // assistant role first (chat), the text delta, and on the last message the finish reason
  // and, with include_usage, the usage chunk.
  std::string Chunk(const v1::GenerateResponse& message);
  // The stream's end: "data: [DONE]\n\n".
  static std::string Done();
  // An error after the stream started: a data event carrying ErrorJson, then Done.
  static std::string StreamError(const absl::Status& status);

  // Not streamed: gathers the messages, then the whole object.
  void Add(const v1::GenerateResponse& message);
  std::string Body() const;

  const std::string& id() const { return id_; }

 private:
  // The message's logprobs in the endpoint's shape; appended to the gathered ones when
  // `gather`. Null when logprobs were not asked for.
  nlohmann::json Logprobs(const v1::GenerateResponse& message, bool gather);
  nlohmann::json Usage(const v1::Usage& usage) const;
  nlohmann::json Envelope(const char* object) const;

  Options options_;
  std::string id_;
  int64_t created_ = 0;
  bool sent_role_ = false;
  int64_t text_offset_ = 0;  // completions logprobs: bytes of text before the next token
  // Add's gathered answer.
  std::string text_;
  nlohmann::json logprobs_;  // chat: {"content": [...]}; completions: {"tokens": [...], ...}
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage_;
};

}  // namespace troupe
