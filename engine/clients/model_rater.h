// ModelRater: the MemoryRater that asks the served model itself, through the engine, as
// low-priority internal requests, so no second model is needed (docs/memory.md).
//
// Each rating is one request per question, a chat prompt
//
//   Text: "<text>"
//   On a scale from 1 to 9, how much <emotion> does this text express? Answer with one digit.
//
// (importance: "how important is this moment to remember"). The text comes first, so the
// eight emotion prompts share their prefix in the prefix cache. Each request computes one
// position and reads the model's probabilities of the digit tokens 1..9 there; the score is
// their expected value, renormalised over the nine digits, mapped linearly from [1, 9] onto
// [1, 10]: score = 1 + (E[d] - 1) * 9 / 8. (The paper's 1..10 scale cannot be read from one
// position where "10" is two tokens, as in most vocabularies.) How well the scores track the
// text depends on the model: a 135M model gives nearly flat vectors (docs/memory.md).
//
// Thread-safe: the Rate* calls may come from several threads; each blocks its caller until the
// engine has answered (never call them on the engine thread).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/memory/memory_rater.h"
#include "engine/tokenizer/chat_template.h"

namespace troupe {

struct ModelRaterOptions {
  int priority = -100;        // below every client request (they default to 0)
  // A rating waiting this long runs at priority 0 (Request::promote_after), so continuous
  // client traffic delays ratings by about this much and never starves them.
  absl::Duration promote_after = absl::Seconds(5);
  int max_text_bytes = 2000;  // longer texts are cut (at a UTF-8 boundary) before rating
};

class ModelRater final : public MemoryRater {
 public:
  // kFailedPrecondition when the model's vocabulary has no single token for each digit 1..9.
  // `engine` must outlive the rater.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelRater>> Create(
      Engine* engine, const ModelRaterOptions& options = {});

  absl::StatusOr<EmotionVector> RateEmotion(std::string_view text) override;
  absl::StatusOr<float> RateImportance(std::string_view text) override;
  // Every question of every input (8 emotions unless known, and importance) submitted at once,
  // so a batch of memories waits for the engine once, not once per memory.
  std::vector<absl::StatusOr<Rating>> RateAll(const std::vector<RatingInput>& inputs) override;

  // The prompt asking `question` about `text` (RatingPrompt for the engine's model).
  PromptText PromptFor(std::string_view text, std::string_view question) const;
  // The question for one emotion: "how much joy does this text express?".
  static std::string EmotionQuestion(Emotion emotion);

 private:
  ModelRater(Engine* engine, const ModelRaterOptions& options, std::array<TokenId, 9> digits)
      : engine_(engine), options_(options), digits_(digits) {}
  // One score per question, all requests in flight at once.
  absl::StatusOr<std::vector<float>> Rate(std::string_view text, const std::vector<std::string>& questions);
  // One score per (text, question), or the error of each that failed.
  std::vector<absl::StatusOr<float>> RatePairs(const std::vector<std::pair<std::string_view, std::string>>& pairs);

  Engine* const engine_;
  const ModelRaterOptions options_;
  const std::array<TokenId, 9> digits_;  // token ids of "1".."9"
};

// The rating prompt for a model of `family`, in one user message (kRaw: a plain text ending in
// "Answer: "); `text` is cut to max_text_bytes. `text` is client text (a message, a memory):
// EncodePrompt keeps it plain.
PromptText RatingPrompt(ChatFamily family, std::string_view text, std::string_view question,
                        int max_text_bytes);

// The score from the digit logprobs (index 0 = digit 1): 1 + (E[d] - 1) * 9 / 8 with E over the
// renormalised probabilities; 1 (the paper's "not scored") when every digit has probability 0.
float ScoreFromDigitLogprobs(const std::array<float, 9>& logprobs);

}  // namespace troupe
