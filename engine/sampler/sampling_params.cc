// ValidateSamplingParams: range checks run where a request is accepted, before it reaches the
// engine thread. Every message names the field, its allowed range and the value given.
#include "engine/sampler/sampling_params.h"

#include <string>

#include "absl/strings/str_format.h"

namespace troupe {
namespace {

// `lo_open` / `hi_open` exclude that end. Written as !(in range) so NaN fails.
absl::Status CheckRange(const char* field, float value, float lo, bool lo_open, float hi,
                        bool hi_open) {
  const bool above_lo = lo_open ? value > lo : value >= lo;
  const bool below_hi = hi_open ? value < hi : value <= hi;
  if (above_lo && below_hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat("%s must be in %c%g, %g%c, got %g", field,
                                                    lo_open ? '(' : '[', lo, hi,
                                                    hi_open ? ')' : ']', value));
}

absl::Status CheckStop(const std::vector<std::string>& stop) {
  if (stop.size() > static_cast<size_t>(kMaxStopStrings)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "stop must have at most %d strings, got %d", kMaxStopStrings, stop.size()));
  }
  for (size_t i = 0; i < stop.size(); ++i) {
    const size_t n = stop[i].size();
    if (n < 1 || n > static_cast<size_t>(kMaxStopStringBytes)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "stop[%d] must be 1..%d bytes long, got %d bytes", i, kMaxStopStringBytes, n));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  absl::Status s = CheckRange("temperature", p.temperature, 0.0f, false, 100.0f, false);
  if (s.ok() && p.top_k < 0) {
    s = absl::InvalidArgumentError(absl::StrFormat("top_k must be >= 0, got %d", p.top_k));
  }
  if (s.ok()) s = CheckRange("top_p", p.top_p, 0.0f, true, 1.0f, false);
  if (s.ok()) s = CheckRange("min_p", p.min_p, 0.0f, false, 1.0f, false);
  if (s.ok()) s = CheckRange("repetition_penalty", p.repetition_penalty, 0.0f, true, 10.0f, false);
  if (s.ok()) s = CheckRange("presence_penalty", p.presence_penalty, -2.0f, false, 2.0f, false);
  if (s.ok()) s = CheckRange("frequency_penalty", p.frequency_penalty, -2.0f, false, 2.0f, false);
  if (s.ok() && p.penalty_last_n < -1) {
    s = absl::InvalidArgumentError(
        absl::StrFormat("penalty_last_n must be >= -1, got %d", p.penalty_last_n));
  }
  if (s.ok() && p.max_tokens < 1) {
    s = absl::InvalidArgumentError(
        absl::StrFormat("max_tokens must be >= 1, got %d", p.max_tokens));
  }
  if (s.ok() && (p.logprobs < -1 || p.logprobs > kMaxLogprobs)) {
    s = absl::InvalidArgumentError(absl::StrFormat("logprobs must be in [-1, %d], got %d",
                                                   kMaxLogprobs, p.logprobs));
  }
  if (s.ok()) s = CheckStop(p.stop);
  return s;
}

}  // namespace troupe
