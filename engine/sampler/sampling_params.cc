// ValidateSamplingParams: range checks run where a request is accepted, before it reaches the
// engine thread. Every message names the field, its allowed range and the value given.
#include "engine/sampler/sampling_params.h"

#include <algorithm>
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

absl::Status CheckStrings(const char* field, const std::vector<std::string>& strings,
                          int max_strings, int max_bytes) {
  if (strings.size() > static_cast<size_t>(max_strings)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s must have at most %d strings, got %d", field, max_strings, strings.size()));
  }
  for (size_t i = 0; i < strings.size(); ++i) {
    const size_t n = strings[i].size();
    if (n < 1 || n > static_cast<size_t>(max_bytes)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s[%d] must be 1..%d bytes long, got %d bytes", field, i, max_bytes, n));
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
  if (s.ok()) s = CheckStrings("stop", p.stop, kMaxStopStrings + kMaxAddedStopStrings, kMaxStopStringBytes);
  if (s.ok()) s = CheckRange("dry_multiplier", p.dry_multiplier, 0.0f, false, 100.0f, false);
  if (s.ok()) s = CheckRange("dry_base", p.dry_base, 1.0f, false, 10.0f, false);
  if (s.ok() && (p.dry_allowed_length < 1 || p.dry_allowed_length > kMaxDryAllowedLength)) {
    s = absl::InvalidArgumentError(absl::StrFormat("dry_allowed_length must be in [1, %d], got %d",
                                                   kMaxDryAllowedLength, p.dry_allowed_length));
  }
  if (s.ok() && p.dry_penalty_last_n < -1) {
    s = absl::InvalidArgumentError(
        absl::StrFormat("dry_penalty_last_n must be >= -1, got %d", p.dry_penalty_last_n));
  }
  if (s.ok()) {
    s = CheckStrings("dry_sequence_breakers", p.dry_sequence_breakers, kMaxDryBreakers,
                     kMaxDryBreakerBytes);
  }
  if (s.ok()) s = CheckRange("xtc_probability", p.xtc_probability, 0.0f, false, 1.0f, false);
  if (s.ok()) s = CheckRange("xtc_threshold", p.xtc_threshold, 0.0f, false, 1.0f, false);
  return s;
}

void AddStopStrings(const std::vector<std::string>& stops, SamplingParams& params) {
  for (const std::string& stop : stops) {
    if (std::find(params.stop.begin(), params.stop.end(), stop) == params.stop.end()) {
      params.stop.push_back(stop);
    }
  }
}

}  // namespace troupe
