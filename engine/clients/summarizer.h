// Folds the oldest turns of a conversation into a running summary when its prompt outgrows the
// context (turn_planner.h). ModelSummarizer asks the served model through the engine: one
// greedy generation per fold, at the priority of the turn that needs it (that turn waits).
//
// Thread-safe; Summarize blocks its caller until the engine has answered (never call it on the
// engine thread).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/tokenizer/chat_template.h"

namespace troupe {

struct SummarizerOptions {
  int max_tokens = 160;        // length of the summary
  int max_input_bytes = 16000; // the oldest turns beyond this are cut from the input
};

class ModelSummarizer {
 public:
  // `engine` must outlive the summarizer.
  explicit ModelSummarizer(Engine* engine, const SummarizerOptions& options = {})
      : engine_(engine), options_(options) {}

  // The summary so far updated with `turns` (user/assistant messages, oldest first), written as
  // a few sentences that keep names, facts, promises and feelings. Errors: the engine refused or
  // failed the request.
  [[nodiscard]] absl::StatusOr<std::string> Summarize(const std::string& summary,
                                                      const std::vector<ChatMessage>& turns,
                                                      const std::string& character_name,
                                                      const std::string& user_name, int priority) const;

  const SummarizerOptions& options() const { return options_; }

  // The prompt Summarize sends (SummaryPrompt for the engine's model); exposed for tests.
  PromptText PromptFor(const std::string& summary, const std::vector<ChatMessage>& turns,
                       const std::string& character_name, const std::string& user_name) const;

 private:
  Engine* const engine_;
  const SummarizerOptions options_;
};

// The summarizer's prompt for a model of `family`: the summary so far, the turns as a
// "<name>: <text>" transcript cut to its last max_input_bytes, and the instruction, in one user
// message after a fixed system message (kRaw: a plain text ending in "Summary:"). The
// summary, turns and names are client text: EncodePrompt keeps them plain.
PromptText SummaryPrompt(ChatFamily family, const std::string& summary,
                         const std::vector<ChatMessage>& turns, const std::string& character_name,
                         const std::string& user_name, int max_input_bytes);

}  // namespace troupe
