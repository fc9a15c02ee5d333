// OpenAI response bodies from RolePlay messages: chunk and object shapes as the openai SDK
// reads them, usage with cached tokens, logprobs per endpoint, errors and their HTTP codes.
#include "server/openai/openai_response.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

using Json = nlohmann::json;

v1::GenerateResponse Delta(const std::string& text, int token_id) {
  v1::GenerateResponse m;
  m.add_token_ids(token_id);
  m.set_text(text);
  v1::TokenLogprobs* lp = m.add_logprobs();
  lp->set_token_id(token_id);
  lp->set_logprob(-0.5f);
  v1::TokenLogprob* alt = lp->add_top();
  alt->set_token_id(token_id + 1);
  alt->set_logprob(-1.5f);
  return m;
}

v1::GenerateResponse Last(const std::string& text, int token_id) {
  v1::GenerateResponse m = Delta(text, token_id);
  m.set_finish_reason(v1::FINISH_REASON_EOS);
  m.mutable_usage()->set_prompt_tokens(30);
  m.mutable_usage()->set_cached_prompt_tokens(16);
  m.mutable_usage()->set_completion_tokens(2);
  m.mutable_usage()->set_restored_prompt_tokens(8);
  return m;
}

// The JSON objects of "data: ..." events; "[DONE]" as a string.
std::vector<Json> Events(const std::string& sse) {
  std::vector<Json> events;
  size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    const size_t end = sse.find("\n\n", at);
    const std::string data = sse.substr(at + 6, end - at - 6);
    events.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
    at = end + 2;
  }
  return events;
}

std::string TokenText(int32_t id) { return "t" + std::to_string(id); }

TEST(OpenAiResponseTest, ChatChunksStartWithTheRoleAndEndWithReasonAndUsage) {
  OpenAiResponder responder({.endpoint = OpenAiResponder::Endpoint::kChatCompletions,
                             .model = "smol",
                             .include_usage = true,
                             .logprobs = 1,
                             .token_text = TokenText});
  std::string sse = responder.Chunk(Delta("Hel", 5));
  sse += responder.Chunk(Last("lo", 6));
  sse += OpenAiResponder::Done();
  const std::vector<Json> events = Events(sse);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["model"], "smol");
  EXPECT_EQ(events[0]["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(events[0]["id"], events[1]["id"]);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events[0]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(events[0]["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(events[0]["usage"].is_null());
  const Json& lp = events[0]["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], "t5");
  EXPECT_FLOAT_EQ(lp["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(lp["bytes"], Json::array({'t', '5'}));
  EXPECT_EQ(lp["top_logprobs"][0]["token"], "t6");
  EXPECT_FALSE(events[1]["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(events[1]["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(events[2]["choices"].empty());
  EXPECT_EQ(events[2]["usage"]["prompt_tokens"], 30);
  EXPECT_EQ(events[2]["usage"]["completion_tokens"], 2);
  EXPECT_EQ(events[2]["usage"]["total_tokens"], 32);
  EXPECT_EQ(events[2]["usage"]["prompt_tokens_details"]["cached_tokens"], 16);
  EXPECT_EQ(events[2]["usage"]["prompt_tokens_details"]["restored_tokens"], 8);
  EXPECT_EQ(events[3], "[DONE]");
}

TEST(OpenAiResponseTest, AWholeChatCompletionGathersTextLogprobsAndUsage) {
  OpenAiResponder responder({.endpoint = OpenAiResponder::Endpoint::kChatCompletions,
                             .model = "smol",
                             .logprobs = 1,
                             .token_text = TokenText});
  responder.Add(Delta("Hel", 5));
  responder.Add(Last("lo", 6));
  const Json body = Json::parse(responder.Body());
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 16);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["restored_tokens"], 8);
}

TEST(OpenAiResponseTest, CompletionsUseTheirOwnShapes) {
  OpenAiResponder responder({.endpoint = OpenAiResponder::Endpoint::kCompletions,
                             .model = "smol",
                             .logprobs = 1,
                             .token_text = TokenText});
  v1::GenerateResponse last = Last("lo", 6);
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  responder.Add(Delta("Hel", 5));
  responder.Add(last);
  const Json body = Json::parse(responder.Body());
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(body["choices"][0]["text"], "Hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  const Json& lp = body["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], Json::array({"t5", "t6"}));
  EXPECT_EQ(lp["text_offset"], Json::array({0, 2}));
  EXPECT_FLOAT_EQ(lp["top_logprobs"][1]["t7"].get<float>(), -1.5f);

  OpenAiResponder plain({.endpoint = OpenAiResponder::Endpoint::kCompletions, .model = "smol"});
  const std::vector<Json> events = Events(plain.Chunk(Delta("Once", 1)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["choices"][0]["text"], "Once");
  EXPECT_TRUE(events[0]["choices"][0]["logprobs"].is_null());
}

TEST(OpenAiResponseTest, ErrorsHaveOpenAisShapeAndHttpCodes) {
  const Json error = Json::parse(ErrorJson(absl::InvalidArgumentError("messages: must be a list")));
  EXPECT_EQ(error["error"]["message"], "messages: must be a list");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  EXPECT_EQ(error["error"]["code"], "invalid_argument");
  EXPECT_TRUE(error["error"]["param"].is_null());
  EXPECT_EQ(Json::parse(ErrorJson(absl::NotFoundError("x"), "model_not_found"))["error"]["code"], "model_not_found");

  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAborted), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);

  const std::vector<Json> events = Events(OpenAiResponder::StreamError(absl::UnavailableError("draining")));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["error"]["type"], "service_unavailable_error");
  EXPECT_EQ(events[1], "[DONE]");
}

TEST(OpenAiResponseTest, SplitUtf8InATokenPieceDoesNotBreakTheJson) {
  OpenAiResponder responder({.endpoint = OpenAiResponder::Endpoint::kChatCompletions,
                             .model = "smol",
                             .logprobs = 0,
                             .token_text = [](int32_t) { return std::string("\xe2\x82"); }});
  const std::vector<Json> events = Events(responder.Chunk(Delta("x", 1)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["choices"][0]["logprobs"]["content"][0]["bytes"], Json::array({0xe2, 0x82}));
}

}  // namespace
}  // namespace troupe
