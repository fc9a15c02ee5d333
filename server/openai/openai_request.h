// The OpenAI-compatible HTTP API's request bodies, read into troupe.v1 requests: what
// /v1/chat/completions and /v1/completions accept (docs/api.md, "OpenAI-compatible HTTP").
// The HTTP front calls the RolePlay service with these, so every rule of the gRPC API (tenants,
// limits, validation) applies unchanged. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/sampler/sampling_params.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// A request body read: the RPC to call and how to answer.
struct OpenAiCall {
  enum class Kind { kGenerate, kChat };
  Kind kind = Kind::kGenerate;
  v1::GenerateRequest generate;  // kind == kGenerate
  v1::ChatRequest chat;          // kind == kChat (the body named a session_id)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Chat: "logprobs": true; completions: "logprobs": N (N >= 0). -1 = none.
  int logprobs = -1;
  std::string model;  // as the client named it ("" when it left it out)
};

struct OpenAiRequestOptions {
  // The fields a chat completion leaves unset take these (the server's chat preset,
  // --default-sampling); completions keep the engine's neutral defaults, as Generate does.
  SamplingParams chat_defaults;
};

// Parses a /v1/chat/completions body. kInvalidArgument names the offending field in
// OpenAI's terms ("messages[2].role: ..."): text that is not a JSON object or nests deeper than
// kMaxJsonDepth, missing or empty messages, an unknown role, content parts that are not text,
// a field of the wrong type, n != 1, tools. Fields it does not know are ignored, as OpenAI's
// own API ignores what it does not use. With session_id the call is a turn of that session:
// the last message must be the user's, and it alone is sent (the session holds the history).
[[nodiscard]] absl::StatusOr<OpenAiCall> ParseChatCompletion(std::string_view body,
                                                            const OpenAiRequestOptions& options);

// Parses a /v1/completions body: prompt as a string, a list of one string, or a list of token
// ids; echo, suffix, best_of > 1 and n != 1 are refused.
[[nodiscard]] absl::StatusOr<OpenAiCall> ParseCompletion(std::string_view body);

}  // namespace troupe
