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
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;

// OK, or kInvalidArgument naming the first bad field, its allowed range and the value given:
// temperature [0, 100], top_k >= 0, top_p (0, 1], min_p [0, 1], repetition_penalty (0, 10],
// presence/frequency_penalty [-2, 2], penalty_last_n >= -1, max_tokens >= 1, logprobs [-1, 20],
// stop: at most 16 strings of 1..256 bytes. NaN fails every float range.
[[nodiscard]] absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace troupe
