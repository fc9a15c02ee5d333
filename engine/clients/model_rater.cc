#include "engine/clients/model_rater.h"

#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/request/collecting_sink.h"
#include "engine/tokenizer/chat_template.h"

namespace troupe {
namespace {

// Internal requests share cached prefixes only with each other, never with a client's.
constexpr char kInternalCacheSalt[] = "troupe-internal/emotion-scorer";

// The digit logprobs a finished one-token rating request returned.
absl::StatusOr<std::array<float, 9>> DigitLogprobs(CollectingSink& sink) {
  sink.Wait();
  if (absl::Status status = sink.status(); !status.ok()) return status;
  const std::vector<SampleResult> samples = sink.logprobs();
  if (samples.empty() || samples[0].scored.size() != 9) {
    return absl::InternalError("model rater: no digit logprobs returned");
  }
  std::array<float, 9> out;
  for (int d = 0; d < 9; ++d) out[d] = samples[0].scored[d].logprob;
  return out;
}

// Cuts text to at most max_bytes without splitting a UTF-8 character.
std::string_view Truncate(std::string_view text, int max_bytes) {
  if (static_cast<int>(text.size()) <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

float ScoreFromDigitLogprobs(const std::array<float, 9>& logprobs) {
  double total = 0, weighted = 0;
  for (int d = 0; d < 9; ++d) {
    if (!(logprobs[d] > -INFINITY)) continue;
    const double p = std::exp(static_cast<double>(logprobs[d]));
    total += p;
    weighted += p * (d + 1);
  }
  if (!(total > 0)) return kEmotionMin;
  const double expected = weighted / total;  // in [1, 9]
  return static_cast<float>(1 + (expected - 1) * 9 / 8);
}

absl::StatusOr<std::unique_ptr<ModelRater>> ModelRater::Create(Engine* engine,
                                                               const ModelRaterOptions& options) {
  std::array<TokenId, 9> digits;
  for (int d = 0; d < 9; ++d) {
    const std::string text(1, static_cast<char>('1' + d));
    const std::vector<TokenId> ids = engine->tokenizer().Encode(text, /*add_bos=*/false,
                                                                /*parse_special=*/false);
    if (ids.size() != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model rater: the model has no single token for the digit ", text));
    }
    digits[d] = ids[0];
  }
  return std::unique_ptr<ModelRater>(new ModelRater(engine, options, digits));
}

constexpr std::string_view kImportanceQuestion =
    "how important is this moment for the speakers to remember later?";

std::string ModelRater::EmotionQuestion(Emotion emotion) {
  return absl::StrCat("how much ", std::string(EmotionName(emotion)), " does this text express?");
}

PromptText RatingPrompt(ChatFamily family, std::string_view text, std::string_view question,
                        int max_text_bytes) {
  const std::string prompt = absl::StrCat(
      "Text: \"", std::string(Truncate(text, max_text_bytes)), "\"\nOn a scale from 1 to 9, ",
      std::string(question), " Answer with one digit.");
  if (family == ChatFamily::kRaw) return PromptText::Client(absl::StrCat(prompt, "\nAnswer: "));
  return RenderChat(family, {{"user", prompt}}, /*add_generation_prompt=*/true);
}

PromptText ModelRater::PromptFor(std::string_view text, std::string_view question) const {
  return RatingPrompt(engine_->model_info().chat_family, text, question, options_.max_text_bytes);
}

absl::StatusOr<EmotionVector> ModelRater::RateEmotion(std::string_view text) {
  std::vector<std::string> questions;
  for (int e = 0; e < kNumEmotions; ++e) questions.push_back(EmotionQuestion(static_cast<Emotion>(e)));
  absl::StatusOr<std::vector<float>> scores = Rate(text, questions);
  if (!scores.ok()) return scores.status();
  EmotionVector v;
  for (int e = 0; e < kNumEmotions; ++e) v[e] = (*scores)[e];
  return v;
}

absl::StatusOr<float> ModelRater::RateImportance(std::string_view text) {
  absl::StatusOr<std::vector<float>> scores = Rate(text, {std::string(kImportanceQuestion)});
  if (!scores.ok()) return scores.status();
  return (*scores)[0];
}

absl::StatusOr<std::vector<float>> ModelRater::Rate(std::string_view text,
                                                     const std::vector<std::string>& questions) {
  std::vector<std::pair<std::string_view, std::string>> pairs;
  for (const std::string& question : questions) pairs.emplace_back(text, question);
  std::vector<float> scores;
  for (absl::StatusOr<float>& score : RatePairs(pairs)) {
    if (!score.ok()) return score.status();
    scores.push_back(*score);
  }
  return scores;
}

std::vector<absl::StatusOr<float>> ModelRater::RatePairs(
    const std::vector<std::pair<std::string_view, std::string>>& pairs) {
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  absl::Status submit_status;
  for (const auto& [text, question] : pairs) {
    Request request;
    request.id = engine_->NewRequestId();
    request.prompt = engine_->tokenizer().EncodePrompt(PromptFor(text, question), /*add_bos=*/true);
    request.sampling.temperature = 0;
    request.sampling.max_tokens = 1;
    request.sampling.ignore_eos = true;
    request.sampling.seed = 0;
    request.sampling.scored_token_ids.assign(digits_.begin(), digits_.end());
    request.priority = options_.priority;
    request.promote_after = options_.promote_after;
    request.cache_salt = kInternalCacheSalt;
    auto sink = std::make_shared<CollectingSink>();
    request.sink = sink;
    submit_status = engine_->Submit(std::move(request));
    if (!submit_status.ok()) break;
    sinks.push_back(std::move(sink));
  }
  std::vector<absl::StatusOr<float>> scores(pairs.size(), submit_status.ok() ? absl::InternalError("not rated")
                                                                             : submit_status);
  for (size_t i = 0; i < sinks.size(); ++i) {  // wait for all that were accepted
    absl::StatusOr<std::array<float, 9>> digits = DigitLogprobs(*sinks[i]);
    if (!digits.ok()) {
      scores[i] = digits.status();
    } else {
      scores[i] = ScoreFromDigitLogprobs(*digits);
    }
  }
  return scores;
}

std::vector<absl::StatusOr<MemoryRater::Rating>> ModelRater::RateAll(const std::vector<RatingInput>& inputs) {
  std::vector<std::pair<std::string_view, std::string>> pairs;
  for (const RatingInput& input : inputs) {
    if (!input.emotion) {
      for (int e = 0; e < kNumEmotions; ++e) pairs.emplace_back(input.text, EmotionQuestion(static_cast<Emotion>(e)));
    }
    pairs.emplace_back(input.text, std::string(kImportanceQuestion));
  }
  const std::vector<absl::StatusOr<float>> scores = RatePairs(pairs);
  std::vector<absl::StatusOr<Rating>> out;
  size_t next = 0;
  for (const RatingInput& input : inputs) {
    Rating rating;
    absl::Status status;
    if (input.emotion) {
      rating.emotion = *input.emotion;
    } else {
      for (int e = 0; e < kNumEmotions; ++e, ++next) {
        if (!scores[next].ok()) {
          if (status.ok()) status = scores[next].status();
        } else {
          rating.emotion[e] = *scores[next];
        }
      }
    }
    if (!scores[next].ok()) {
      if (status.ok()) status = scores[next].status();
    } else {
      rating.importance = *scores[next];
    }
    ++next;
    if (status.ok()) {
      out.push_back(rating);
    } else {
      out.push_back(status);
    }
  }
  return out;
}

}  // namespace troupe
