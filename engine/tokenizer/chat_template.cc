// Per-family chat rendering (see chat_template.h). Each Render* function mirrors one reference
// Jinja template, quoted in its comment; "trim" is Jinja's trim filter / Python's str.strip().
#include "engine/tokenizer/chat_template.h"


namespace troupe {
namespace {

// The template's own text (markers, role names, separators): special-token texts in it are
// special.
void T(PromptText* out, std::string_view text) { out->AddTemplate(text); }
// Client text (message contents): always plain.
void C(PromptText* out, std::string_view text) { out->AddClient(text); }

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

bool HasLeadingSystem(const std::vector<ChatMessage>& m) {
  return !m.empty() && m[0].role == "system";
}

// {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}
// {{ '<|im_start|>system\n<default><|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role']
// + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}
// {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
void RenderChatMl(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                  PromptText* out) {
  if (!t.default_system.empty() && !messages.empty() && !HasLeadingSystem(messages)) {
    T(out, "<|im_start|>system\n");
    T(out, t.default_system);  // the template's literal, not a client's
    T(out, "<|im_end|>\n");
  }
  for (const ChatMessage& m : messages) {
    T(out, "<|im_start|>");
    T(out, m.role);
    T(out, "\n");
    C(out, m.content);
    T(out, "<|im_end|>\n");
  }
}

// Llama-3: {{ bos_token }} then per message '<|start_header_id|>' + role +
// '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>'. Llama-3.1 first emits a system turn
// "Cutting Knowledge Date: ...\nToday Date: ...\n\n" + system | trim, even without a system
// message.
void RenderLlama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                  PromptText* out) {
  size_t first = 0;
  if (!t.system_preamble.empty()) {
    std::string_view system;
    if (HasLeadingSystem(messages)) {
      system = Trim(messages[0].content);
      first = 1;
    }
    T(out, "<|start_header_id|>system<|end_header_id|>\n\n");
    T(out, t.system_preamble);
    C(out, system);
    T(out, "<|eot_id|>");
  }
  for (size_t i = first; i < messages.size(); ++i) {
    T(out, "<|start_header_id|>");
    T(out, messages[i].role);
    T(out, "<|end_header_id|>\n\n");
    C(out, Trim(messages[i].content));
    T(out, "<|eot_id|>");
  }
}

// meta-llama/Llama-2-7b-chat-hf: a leading system message becomes '<<SYS>>\n' + system +
// '\n<</SYS>>\n\n' in front of the first remaining message; user: bos_token + '[INST] ' +
// content.strip() + ' [/INST]'; assistant: ' ' + content.strip() + ' ' + eos_token. No
// generation prompt. The first BOS is left to the tokenizer.
void RenderLlama2(const std::vector<ChatMessage>& messages, PromptText* out) {
  const bool has_system = HasLeadingSystem(messages);
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    PromptText content;
    if (has_system && i == 1) {
      T(&content, "<<SYS>>\n");
      C(&content, messages[0].content);
      T(&content, "\n<</SYS>>\n\n");
    }
    C(&content, messages[i].content);
    if (messages[i].role == "user") {
      T(out, out->empty() ? "" : "<s>");
      T(out, "[INST] ");
      out->Append(content.Trimmed());
      T(out, " [/INST]");
    } else if (messages[i].role == "assistant") {
      T(out, " ");
      out->Append(content.Trimmed());
      T(out, " </s>");
    }
  }
}

// mistralai/Mistral-7B-Instruct-v0.2: {{ bos_token }}, user: '[INST] ' + content + ' [/INST]',
// assistant: content + eos_token. The template rejects system messages; a leading one is folded
// into the first user message as system + '\n\n' + user (Mistral's later templates do the same).
void RenderMistral(const std::vector<ChatMessage>& messages, PromptText* out) {
  const bool has_system = HasLeadingSystem(messages);
  bool folded = !has_system;
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      T(out, "[INST] ");
      if (!folded) {
        C(out, messages[0].content);
        T(out, "\n\n");
      }
      C(out, m.content);
      T(out, " [/INST]");
      folded = true;
    } else if (m.role == "assistant") {
      C(out, m.content);
      T(out, "</s>");
    }
  }
}

// google/gemma-3 (same as gemma-2 without a system message): {{ bos_token }}, per message
// '<start_of_turn>' + ('model' for assistant, else role) + '\n' + (first_user_prefix on the
// first message) + content | trim + '<end_of_turn>\n', where first_user_prefix = system + '\n\n'.
// Generation prompt '<start_of_turn>model\n'.
void RenderGemma(const std::vector<ChatMessage>& messages, PromptText* out) {
  const bool has_system = HasLeadingSystem(messages);
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool first = i == (has_system ? 1u : 0u);
    T(out, "<start_of_turn>");
    T(out, m.role == "assistant" ? "model" : m.role);
    T(out, "\n");
    if (first && has_system) {
      C(out, messages[0].content);
      T(out, "\n\n");
    }
    C(out, Trim(m.content));
    T(out, "<end_of_turn>\n");
  }
}

// microsoft/Phi-3-small / Phi-3.5-mini: per message '<|' + role + '|>\n' + content + '<|end|>\n';
// generation prompt '<|assistant|>\n'.
void RenderPhi3(const std::vector<ChatMessage>& messages, PromptText* out) {
  for (const ChatMessage& m : messages) {
    T(out, "<|");
    T(out, m.role);
    T(out, "|>\n");
    C(out, m.content);
    T(out, "<|end|>\n");
  }
}

// The text of a string literal that follows `marker` up to `end`, with "\n" escapes undone;
// "" when there is none or it contains template syntax (a quote, brace or '+').
std::string LiteralAfter(std::string_view jinja, std::string_view marker, std::string_view end) {
  for (size_t pos = jinja.find(marker); pos != std::string_view::npos;
       pos = jinja.find(marker, pos + 1)) {
    const size_t begin = pos + marker.size();
    const size_t stop = jinja.find(end, begin);
    if (stop == std::string_view::npos) break;
    const std::string_view raw = jinja.substr(begin, stop - begin);
    if (raw.empty() || raw.find_first_of("'\"{}+") != std::string_view::npos) continue;
    std::string text;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n') {
        text.push_back('\n');
        ++i;
      } else {
        text.push_back(raw[i]);
      }
    }
    return text;
  }
  return "";
}

}  // namespace

ChatFamily DetectChatFamily(std::string_view jinja) {
  if (Contains(jinja, "<|im_start|>")) return ChatFamily::kChatMl;
  if (Contains(jinja, "[INST]")) {
    return Contains(jinja, "<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
  }
  if (Contains(jinja, "<|start_header_id|>")) return ChatFamily::kLlama3;
  if (Contains(jinja, "<start_of_turn>")) return ChatFamily::kGemma;
  // Phi-3-small builds '<|' + role + '|>' and only spells out "<|assistant|>".
  if ((Contains(jinja, "<|user|>") || Contains(jinja, "<|assistant|>")) &&
      Contains(jinja, "<|end|>")) {
    return ChatFamily::kPhi3;
  }
  return ChatFamily::kRaw;
}

std::string_view ChatFamilyName(ChatFamily family) {
  switch (family) {
    case ChatFamily::kRaw:
      return "raw";
    case ChatFamily::kChatMl:
      return "chatml";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kMistral:
      return "mistral";
    case ChatFamily::kGemma:
      return "gemma";
    case ChatFamily::kPhi3:
      return "phi3";
  }
  return "unknown";
}

ChatTemplate ParseChatTemplate(std::string_view jinja) {
  ChatTemplate t;
  t.family = DetectChatFamily(jinja);
  if (t.family == ChatFamily::kChatMl) {
    // The system literal may spell its newline as an escape ("\n") or a real newline.
    t.default_system = LiteralAfter(jinja, "<|im_start|>system\\n", "<|im_end|>");
    if (t.default_system.empty()) {
      t.default_system = LiteralAfter(jinja, "<|im_start|>system\n", "<|im_end|>");
    }
  } else if (t.family == ChatFamily::kLlama3 &&
             Contains(jinja, "Cutting Knowledge Date: December 2023")) {
    std::string date = LiteralAfter(jinja, "set date_string = \"", "\"");
    if (date.empty()) date = "26 Jul 2024";
    t.system_preamble = "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n";
  }
  return t;
}

PromptText RenderChat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                      bool add_generation_prompt) {
  PromptText out;
  switch (t.family) {
    case ChatFamily::kRaw:
      for (const ChatMessage& m : messages) C(&out, m.content);
      return out;
    case ChatFamily::kChatMl:
      RenderChatMl(t, messages, &out);
      if (add_generation_prompt) T(&out, "<|im_start|>assistant\n");
      return out;
    case ChatFamily::kLlama3:
      RenderLlama3(t, messages, &out);
      if (add_generation_prompt) T(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
      return out;
    case ChatFamily::kLlama2:
      RenderLlama2(messages, &out);  // the template has no generation prompt
      return out;
    case ChatFamily::kMistral:
      RenderMistral(messages, &out);  // neither has this one
      return out;
    case ChatFamily::kGemma:
      RenderGemma(messages, &out);
      if (add_generation_prompt) T(&out, "<start_of_turn>model\n");
      return out;
    case ChatFamily::kPhi3:
      RenderPhi3(messages, &out);
      if (add_generation_prompt) T(&out, "<|assistant|>\n");
      return out;
  }
  return out;
}

PromptText RenderChat(ChatFamily family, const std::vector<ChatMessage>& messages,
                      bool add_generation_prompt) {
  ChatTemplate t;
  t.family = family;
  return RenderChat(t, messages, add_generation_prompt);
}

}  // namespace troupe
