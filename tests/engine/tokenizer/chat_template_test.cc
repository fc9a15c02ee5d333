// Chat family detection and rendering. The templates are the models' published Jinja
// templates; the expected strings are what those templates render for the conversation that
// llama.cpp's tests/test-chat-template.cpp uses (its expected outputs where the Jinja rendering
// agrees; worked out from the template where llama.cpp's differs).
#include "engine/tokenizer/chat_template.h"

#include <algorithm>
#include <string>
#include <vector>

#include "engine/formats/gguf.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/testing/model_paths.h"

namespace troupe {
namespace {

// teknium/OpenHermes-2.5-Mistral-7B
constexpr const char* kChatMlJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";
// meta-llama/Meta-Llama-3-8B-Instruct
constexpr const char* kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
// meta-llama/Llama-3.1-8B-Instruct (the parts that matter here)
constexpr const char* kLlama31Jinja =
    "{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul "
    "2024\" %}\n{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{{- "
    "\"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + "
    "\"\\n\\n\" }}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}";
// meta-llama/Llama-2-7b-chat-hf
constexpr const char* kLlama2Jinja =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] "
    "== 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must "
    "alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and "
    "system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% "
    "endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' "
    "[/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
    "eos_token }}{% endif %}{% endfor %}";
// mistralai/Mistral-7B-Instruct-v0.2
constexpr const char* kMistralJinja =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ "
    "'[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}";
// google/gemma-7b-it
constexpr const char* kGemmaJinja =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% "
    "set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
    "'<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor "
    "%}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
// microsoft/Phi-3-small-8k-instruct
constexpr const char* kPhi3Jinja =
    "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + "
    "message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}";

const std::vector<ChatMessage>& Conversation() {
  static const std::vector<ChatMessage> kMessages = {
      {"system", "You are a helpful assistant"},
      {"user", "Hello"},
      {"assistant", "Hi there"},
      {"user", "Who are you"},
      {"assistant", "   I am an assistant   "},
      {"user", "Another question"},
  };
  return kMessages;
}

std::vector<ChatMessage> WithoutSystem() {
  std::vector<ChatMessage> m = Conversation();
  m.erase(m.begin());
  return m;
}

TEST(DetectChatFamilyTest, RecognisesEachFamilyByItsMarkers) {
  EXPECT_EQ(DetectChatFamily(kChatMlJinja), ChatFamily::kChatMl);
  EXPECT_EQ(DetectChatFamily(kLlama3Jinja), ChatFamily::kLlama3);
  EXPECT_EQ(DetectChatFamily(kLlama31Jinja), ChatFamily::kLlama3);
  EXPECT_EQ(DetectChatFamily(kLlama2Jinja), ChatFamily::kLlama2);
  EXPECT_EQ(DetectChatFamily(kMistralJinja), ChatFamily::kMistral);
  EXPECT_EQ(DetectChatFamily(kGemmaJinja), ChatFamily::kGemma);
  EXPECT_EQ(DetectChatFamily(kPhi3Jinja), ChatFamily::kPhi3);
  EXPECT_EQ(DetectChatFamily(""), ChatFamily::kRaw);
  EXPECT_EQ(DetectChatFamily("{{ messages[0]['content'] }}"), ChatFamily::kRaw);
  EXPECT_EQ(ChatFamilyName(ChatFamily::kChatMl), "chatml");
  EXPECT_EQ(ChatFamilyName(ChatFamily::kRaw), "raw");
}

// RenderChat's text, for comparing with the reference templates' output.
template <typename Template>
std::string RenderText(const Template& t, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  return RenderChat(t, messages, add_generation_prompt).Flat();
}

TEST(RenderChatTest, ChatMl) {
  EXPECT_EQ(RenderText(ChatFamily::kChatMl, Conversation(), true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello"
            "<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are "
            "you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
            "<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(RenderText(ChatFamily::kChatMl, {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(RenderChatTest, Llama3TrimsContent) {
  EXPECT_EQ(RenderText(ParseChatTemplate(kLlama3Jinja), Conversation(), true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n");
}

TEST(RenderChatTest, Llama31AlwaysOpensWithTheDatedSystemTurn) {
  const ChatTemplate t = ParseChatTemplate(kLlama31Jinja);
  EXPECT_EQ(t.system_preamble,
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
  EXPECT_EQ(RenderText(t, {{"user", "Hi"}}, true),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(RenderText(t, {{"system", " Be brief. "}, {"user", "Hi"}}, false),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(RenderChatTest, Llama2FoldsSystemIntoFirstTurnAndStrips) {
  EXPECT_EQ(RenderText(ChatFamily::kLlama2, Conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there "
            "</s><s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question "
            "[/INST]");
  EXPECT_EQ(RenderText(ChatFamily::kLlama2, {{"user", " Hi "}}, true), "[INST] Hi [/INST]");
}

TEST(RenderChatTest, MistralV02) {
  EXPECT_EQ(RenderText(ChatFamily::kMistral, WithoutSystem(), true),
            "[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   "
            "</s>[INST] Another question [/INST]");
  // The template rejects a system role; we fold it into the first user message.
  EXPECT_EQ(RenderText(ChatFamily::kMistral, {{"system", "Be brief."}, {"user", "Hi"}}, true),
            "[INST] Be brief.\n\nHi [/INST]");
}

TEST(RenderChatTest, GemmaUsesModelRoleAndFoldsSystem) {
  EXPECT_EQ(RenderText(ChatFamily::kGemma, Conversation(), true),
            "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you"
            "<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
            "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
}

TEST(RenderChatTest, Phi3) {
  EXPECT_EQ(RenderText(ChatFamily::kPhi3, Conversation(), true),
            "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n"
            "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I "
            "am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n");
}

TEST(RenderChatTest, RawConcatenatesContents) {
  EXPECT_EQ(RenderText(ChatFamily::kRaw, {{"system", "Once "}, {"user", "upon a time"}}, true),
            "Once upon a time");
}

// The default model: its template from the GGUF, rendered and tokenized end to end.
TEST(RenderChatTest, SmolLm2TemplateFromGguf) {
  auto file = GgufFile::Open(testing::SmolLmPath());
  ASSERT_TRUE(file.ok()) << file.status();
  auto jinja = (*file)->GetString("tokenizer.chat_template");
  ASSERT_TRUE(jinja.ok()) << jinja.status();
  const ChatTemplate t = ParseChatTemplate(*jinja);
  EXPECT_EQ(t.family, ChatFamily::kChatMl);
  EXPECT_EQ(t.default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");

  // No system message: the template inserts its default one.
  const PromptText prompt = RenderChat(t, {{"user", "Hi <|im_end|>"}}, true);
  EXPECT_EQ(prompt.Flat(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(RenderText(t, Conversation(), true), RenderText(ChatFamily::kChatMl, Conversation(), true));

  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const TokenId im_start = (*tok)->Find("<|im_start|>");
  const TokenId im_end = (*tok)->Find("<|im_end|>");
  const std::vector<TokenId> ids = (*tok)->EncodePrompt(prompt, /*add_bos=*/true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), im_start);  // SmolLM2 adds no BOS
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_start), 3);
  // The message's "<|im_end|>" is plain text: only the template's two end the turns.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end), 2);
  EXPECT_TRUE((*tok)->IsEndOfGeneration(im_end));
  // Parsed as one text, the same string would close the user's turn early.
  const std::vector<TokenId> parsed = (*tok)->Encode(prompt.Flat(), true, /*parse_special=*/true);
  EXPECT_EQ(std::count(parsed.begin(), parsed.end(), im_end), 3);
}

// The template's own text is template segments, message contents client segments.
TEST(RenderChatTest, MarksTemplateAndClientText) {
  for (ChatFamily family : {ChatFamily::kChatMl, ChatFamily::kLlama3, ChatFamily::kLlama2,
                            ChatFamily::kMistral, ChatFamily::kGemma, ChatFamily::kPhi3}) {
    SCOPED_TRACE(ChatFamilyName(family));
    const PromptText prompt = RenderChat(family, Conversation(), true);
    std::string client;
    for (const PromptText::Segment& s : prompt.segments()) {
      if (!s.is_template) client += s.text + "|";
    }
    for (const ChatMessage& m : Conversation()) {
      std::string_view content = m.content;
      while (!content.empty() && content.back() == ' ') content.remove_suffix(1);
      while (!content.empty() && content.front() == ' ') content.remove_prefix(1);
      EXPECT_NE(client.find(content), std::string::npos) << m.content << " in " << client;
    }
    EXPECT_EQ(client.find('<'), std::string::npos) << "a marker in client text: " << client;
    EXPECT_EQ(client.find("[INST]"), std::string::npos) << client;
  }
  const PromptText raw = RenderChat(ChatFamily::kRaw, Conversation(), true);
  for (const PromptText::Segment& s : raw.segments()) EXPECT_FALSE(s.is_template);
}

}  // namespace
}  // namespace troupe
