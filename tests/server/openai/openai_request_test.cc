// OpenAI request bodies into RolePlay requests: what each field becomes, what is refused and
// with which message.
#include "server/openai/openai_request.h"

#include <string>

#include "engine/sampler/sampling_preset.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

OpenAiRequestOptions Preset() { return {.chat_defaults = ChatSamplingPreset()}; }

TEST(OpenAiRequestTest, AChatCompletionBecomesAGenerateOfItsMessages) {
  const absl::StatusOr<OpenAiCall> call = ParseChatCompletion(R"({
      "model": "m", "stream": true, "stream_options": {"include_usage": true},
      "messages": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
                   {"role": "assistant", "content": "Hello."},
                   {"role": "developer", "content": "Stay in character."},
                   {"role": "user", "content": "Sing.", "name": "Robin"}],
      "temperature": 0.5, "top_k": -1, "max_tokens": 40, "stop": "\n\n", "seed": 7,
      "user": "end-user-1", "cache_salt": "s", "priority": 3})",
                                                              Preset());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->kind, OpenAiCall::Kind::kGenerate);
  EXPECT_TRUE(call->stream);
  EXPECT_TRUE(call->include_usage);
  EXPECT_EQ(call->model, "m");
  EXPECT_EQ(call->logprobs, -1);
  const v1::GenerateRequest& g = call->generate;
  ASSERT_EQ(g.messages_size(), 5);
  EXPECT_EQ(g.messages(0).role(), v1::ROLE_SYSTEM);
  EXPECT_EQ(g.messages(1).content(), "Hi\nthere");
  EXPECT_EQ(g.messages(2).role(), v1::ROLE_ASSISTANT);
  EXPECT_EQ(g.messages(3).role(), v1::ROLE_SYSTEM);  // developer is OpenAI's newer name
  EXPECT_EQ(g.messages(4).content(), "Sing.");
  EXPECT_FLOAT_EQ(g.sampling().temperature(), 0.5f);
  EXPECT_EQ(g.sampling().top_k(), 0);  // vLLM's -1 = off
  EXPECT_EQ(g.sampling().max_tokens(), 40);
  ASSERT_EQ(g.sampling().stop_size(), 1);
  EXPECT_EQ(g.sampling().stop(0), "\n\n");
  EXPECT_EQ(g.sampling().seed(), 7u);
  EXPECT_EQ(g.cache_salt(), "s");
  EXPECT_EQ(g.priority(), 3);
  // Unset fields take the chat preset; set ones keep the client's value.
  const SamplingParams preset = ChatSamplingPreset();
  EXPECT_FLOAT_EQ(g.sampling().min_p(), preset.min_p);
  EXPECT_FLOAT_EQ(g.sampling().dry_multiplier(), preset.dry_multiplier);
}

TEST(OpenAiRequestTest, ASessionIdMakesItATurnOfThatSession) {
  const absl::StatusOr<OpenAiCall> call = ParseChatCompletion(
      R"({"messages": [{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"},
                       {"role": "user", "content": "new"}],
          "session_id": "abc", "logprobs": true, "top_logprobs": 2, "max_completion_tokens": 9})",
      Preset());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->kind, OpenAiCall::Kind::kChat);
  EXPECT_EQ(call->chat.session_id(), "abc");
  EXPECT_EQ(call->chat.message(), "new");  // the session holds the rest
  EXPECT_EQ(call->chat.sampling().max_tokens(), 9);
  EXPECT_TRUE(call->chat.sampling().logprobs());
  EXPECT_EQ(call->chat.sampling().top_logprobs(), 2);
  EXPECT_EQ(call->logprobs, 2);

  const absl::StatusOr<OpenAiCall> not_user = ParseChatCompletion(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "session_id": "abc"})",
      Preset());
  EXPECT_EQ(not_user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_user.status().message().find("last message"), std::string::npos);
}

TEST(OpenAiRequestTest, ACharacterIdChatsAsThatCharacter) {
  const absl::StatusOr<OpenAiCall> call = ParseChatCompletion(
      R"({"messages": [{"role": "user", "content": "Hello"}], "character_id": "c1", "user_name": "Robin"})",
      Preset());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->generate.character_id(), "c1");
  EXPECT_EQ(call->generate.user_name(), "Robin");
  EXPECT_FALSE(ParseChatCompletion(R"({"messages": [{"role": "user", "content": "x"}], "user_name": "R"})", Preset()).ok());
}

TEST(OpenAiRequestTest, BadBodiesAreRefusedNamingTheField) {
  const auto message_of = [](const char* body) {
    const absl::StatusOr<OpenAiCall> call = ParseChatCompletion(body, Preset());
    EXPECT_FALSE(call.ok()) << body;
    EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument) << body;
    return std::string(call.status().message());
  };
  EXPECT_NE(message_of("not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(message_of("[1]").find("JSON object"), std::string::npos);
  EXPECT_NE(message_of(R"({"messages": []})").find("messages"), std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "tool", "content": "x"}]})").find("messages[0].role"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user"}]})").find("messages[0].content"), std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").find("content[0]"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})").find("temperature"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})").find("max_tokens"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e12})").find("max_tokens"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "n": 2})").find("n must be 1"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})").find("tools"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 5}})").find("logit_bias"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})").find("logprobs"),
            std::string::npos);
  // Hostile nesting never reaches the parser's recursion.
  const std::string deep = "{\"messages\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(message_of(deep.c_str()).find("nests deeper"), std::string::npos);
}

TEST(OpenAiRequestTest, NullMeansUnsetAndUnknownFieldsAreIgnored) {
  const absl::StatusOr<OpenAiCall> call = ParseChatCompletion(
      R"({"messages": [{"role": "user", "content": "x"}], "temperature": null, "stop": null,
          "frequency_penalty": 0, "some_future_field": {"a": 1}, "tools": [], "response_format": {"type": "text"}})",
      Preset());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_FLOAT_EQ(call->generate.sampling().temperature(), ChatSamplingPreset().temperature);
}

TEST(OpenAiRequestTest, ACompletionTakesTextOrTokenIdsAndOpenAisDefaultLength) {
  absl::StatusOr<OpenAiCall> call = ParseCompletion(R"({"model": "m", "prompt": "Once upon", "logprobs": 2})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->generate.prompt(), "Once upon");
  EXPECT_EQ(call->generate.sampling().max_tokens(), 16);
  EXPECT_FALSE(call->generate.sampling().has_temperature());  // neutral engine defaults, as Generate
  EXPECT_EQ(call->logprobs, 2);
  EXPECT_EQ(call->generate.sampling().top_logprobs(), 2);

  call = ParseCompletion(R"({"prompt": ["Once"]})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->generate.prompt(), "Once");
  call = ParseCompletion(R"({"prompt": [1, 2, 3], "max_tokens": 4})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->generate.prompt_token_ids_size(), 3);
  EXPECT_EQ(call->generate.sampling().max_tokens(), 4);
  call = ParseCompletion(R"({"prompt": [[5, 6]]})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->generate.prompt_token_ids_size(), 2);

  for (const char* bad : {R"({"prompt": ["a", "b"]})", R"({"prompt": [-1]})", R"({"prompt": 5})", R"({})",
                          R"({"prompt": "x", "echo": true})", R"({"prompt": "x", "best_of": 3})",
                          R"({"prompt": "x", "suffix": "y"})"}) {
    EXPECT_EQ(ParseCompletion(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace troupe
