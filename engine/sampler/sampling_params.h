// Per-request sampling parameters. Plain data; validated by ValidateSamplingParams on the
// thread that accepts the request. docs/sampling.md gives the order the knobs apply in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/types.h"

namespace troupe {


struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  int top_k = 0;                   // 0 = disabled
  float top_p = 1.0f;              // 1 = disabled
  float min_p = 0.0f;              // 0 = disabled
  float repetition_penalty = 1.0f; // 1 = disabled (llama.cpp/HF style, over prompt + output)
  float presence_penalty = 0.0f;   // OpenAI style, over output tokens (in the window)
  float frequency_penalty = 0.0f;  // OpenAI style, per occurrence in output (in the window)
  int penalty_last_n = 64;         // window in tokens for all penalties; -1 = whole context,
                                   // 0 = penalties off
  // DRY (engine/sampler/dry.h): a token continuing a verbatim repeat of L >= allowed_length
  // tokens loses multiplier * base^(L - allowed_length); breakers end a repeat.
  float dry_multiplier = 0.0f;     // 0 = off
  float dry_base = 1.75f;
  int dry_allowed_length = 2;
  int dry_penalty_last_n = -1;     // window in tokens; -1 = whole context, 0 = off
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
  // XTC (exclude top choices): with probability xtc_probability, when two or more tokens left
  // after min-p have an untempered probability >= xtc_threshold, all but the least likely of
  // them are removed.
  float xtc_probability = 0.0f;    // 0 = off
  float xtc_threshold = 0.1f;      // > 0.5 = off (two tokens cannot both exceed it)
  std::optional<uint64_t> seed;    // nullopt = random seed per request
  int max_tokens = 256;            // completion tokens
  std::vector<std::string> stop;   // stop strings (not included in the output)
  bool ignore_eos = false;
  int logprobs = -1;               // -1 = none; 0 = chosen token only; N = chosen + top N (<= 20)
  // Also report the logprobs of these ids at every sampled position (SampleResult::scored), e.g.
  // the digit tokens an internal rating request reads its expected value from. Not validated
  // against the vocabulary here: ids outside it get -inf.
  std::vector<TokenId> scored_token_ids;
};

// Limits checked by ValidateSamplingParams.
inline constexpr int kMaxLogprobs = 20;
inline constexpr int kMaxStopStrings = 16;  // a client's own
// What the server may add to a client's stop strings (a chat's user-name line, a raw
// transcript's speaker lines): ValidateSamplingParams allows kMaxStopStrings + this many.
inline constexpr int kMaxAddedStopStrings = 4;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxDryBreakers = 16;
inline constexpr int kMaxDryBreakerBytes = 32;
inline constexpr int kMaxDryAllowedLength = 1024;

// OK, or kInvalidArgument naming the first bad field, its allowed range and the value given:
// temperature [0, 100], top_k >= 0, top_p (0, 1], min_p [0, 1], repetition_penalty (0, 10],
// presence/frequency_penalty [-2, 2], penalty_last_n >= -1, max_tokens >= 1, logprobs [-1, 20],
// stop: at most 16 + 4 strings of 1..256 bytes (16 from the client, checked where requests are
// converted; 4 the server adds); dry_multiplier [0, 100], dry_base [1, 10],
// dry_allowed_length [1, 1024], dry_penalty_last_n >= -1, dry_sequence_breakers: at most 16
// strings of 1..32 bytes; xtc_probability and xtc_threshold [0, 1]. NaN fails every float range.
[[nodiscard]] absl::Status ValidateSamplingParams(const SamplingParams& params);

// Appends the stop strings of `stops` that `params` lacks (the server's additions to a
// client's list). REQUIRES: at most kMaxAddedStopStrings of them are new.
void AddStopStrings(const std::vector<std::string>& stops, SamplingParams& params);

}  // namespace troupe
