// Chat templates: the model family is detected from tokenizer.chat_template (a Jinja string we
// do not execute) and rendered by hand-written code per family that reproduces what the
// family's reference Jinja template renders (docs/tokenizer.md lists the references).
// Pure functions over immutable data; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/prompt_text.h"

namespace troupe {

enum class ChatFamily { kRaw, kChatMl, kLlama3, kLlama2, kMistral, kGemma, kPhi3 };

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"; never client text (it is a marker)
  std::string content;  // rendered as client text: never parsed for special tokens
};

// Detects the family from the Jinja source; kRaw when empty or unrecognised (base models).
// Markers, checked in this order: "<|im_start|>" ChatML; "[INST]" with "<<SYS>>" Llama-2,
// without it Mistral; "<|start_header_id|>" Llama-3; "<start_of_turn>" Gemma; "<|user|>" or
// "<|assistant|>" with "<|end|>" Phi-3.
ChatFamily DetectChatFamily(std::string_view jinja_template);
std::string_view ChatFamilyName(ChatFamily family);

// A detected family plus the few template constants that change the rendering.
struct ChatTemplate {
  ChatFamily family = ChatFamily::kRaw;
  // ChatML: system prompt the template inserts when the conversation has none (SmolLM2: "You
  // are a helpful AI assistant named SmolLM, trained by Hugging Face"). "" = none.
  std::string default_system;
  // Llama-3.1: the template always opens with a system turn that starts with this preamble
  // ("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"). "" = Llama-3.0.
  std::string system_preamble;
};

// DetectChatFamily plus the constants above, read from the template's string literals.
ChatTemplate ParseChatTemplate(std::string_view jinja_template);

// Renders `messages` and, when add_generation_prompt, the header that starts the assistant's
// turn. The template's own text (markers such as "<|im_start|>", role names, separators, the
// template's default system prompt) goes into template segments and every message content
// into client segments, so Tokenizer::EncodePrompt turns only the template's markers into
// special tokens (role-safe: a message cannot close its turn or open another). BOS is *not*
// included (the tokenizer adds it), though later BOS/EOS texts inside the conversation are
// (Llama-2's "</s><s>[INST]"). Families without a system role (Gemma, Mistral; Llama-2 folds
// it into the first user turn) fold the system prompt into the first user message. kRaw
// concatenates contents, for base models: all client text.
PromptText RenderChat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                      bool add_generation_prompt);
// Same with no template constants (ChatTemplate{family}).
PromptText RenderChat(ChatFamily family, const std::vector<ChatMessage>& messages,
                      bool add_generation_prompt);

}  // namespace troupe
