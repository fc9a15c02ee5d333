#include "engine/clients/summarizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/request/collecting_sink.h"

namespace troupe {
namespace {

constexpr char kInternalCacheSalt[] = "troupe-internal/summarizer";

}  // namespace

PromptText SummaryPrompt(ChatFamily family, const std::string& summary,
                         const std::vector<ChatMessage>& turns, const std::string& character_name,
                         const std::string& user_name, int max_input_bytes) {
  std::string transcript;
  for (const ChatMessage& m : turns) {
    const std::string& speaker = m.role == "user" ? user_name : character_name;
    absl::StrAppend(&transcript, speaker, ": ", m.content, "\n");
  }
  if (static_cast<int>(transcript.size()) > max_input_bytes) {
    size_t from = transcript.size() - max_input_bytes;
    while (from < transcript.size() && (static_cast<unsigned char>(transcript[from]) & 0xC0) == 0x80) ++from;
    transcript = transcript.substr(from);
  }
  std::string request;
  if (!summary.empty()) absl::StrAppend(&request, "Summary so far: ", summary, "\n\n");
  absl::StrAppend(&request, "Conversation:\n", transcript,
                  "\nWrite an updated summary of this role-play in at most five sentences. Keep names, "
                  "facts, promises and feelings.");
  const std::vector<ChatMessage> messages = {
      {"system", "You write brief, factual summaries of conversations."}, {"user", request}};
  if (family == ChatFamily::kRaw) return PromptText::Client(absl::StrCat(request, "\nSummary:"));
  return RenderChat(family, messages, /*add_generation_prompt=*/true);
}

PromptText ModelSummarizer::PromptFor(const std::string& summary, const std::vector<ChatMessage>& turns,
                                      const std::string& character_name, const std::string& user_name) const {
  return SummaryPrompt(engine_->model_info().chat_family, summary, turns, character_name, user_name,
                       options_.max_input_bytes);
}

absl::StatusOr<std::string> ModelSummarizer::Summarize(const std::string& summary,
                                                       const std::vector<ChatMessage>& turns,
                                                       const std::string& character_name,
                                                       const std::string& user_name, int priority) const {
  Request request;
  request.id = engine_->NewRequestId();
  request.prompt = engine_->tokenizer().EncodePrompt(
      PromptFor(summary, turns, character_name, user_name), /*add_bos=*/true);
  request.sampling.temperature = 0;
  request.sampling.max_tokens = options_.max_tokens;
  request.sampling.seed = 0;
  request.sampling.stop = {"\n\n"};
  request.priority = priority;
  request.cache_salt = kInternalCacheSalt;
  auto sink = std::make_shared<CollectingSink>();
  request.sink = sink;
  if (absl::Status submitted = engine_->Submit(std::move(request)); !submitted.ok()) return submitted;
  sink->Wait();
  if (absl::Status status = sink->status(); !status.ok()) return status;
  const std::string text = sink->text();
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  return std::string(trimmed.data(), trimmed.size());
}

}  // namespace troupe
