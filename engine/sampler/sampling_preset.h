// The server's default sampling for chat turns: a built-in preset, or one read from a JSON file
// (`troupe-server --default-sampling FILE`). A field a request sets overrides the preset's; the
// preset fills the rest. docs/sampling.md ("The chat preset") says why these values.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/sampler/sampling_params.h"

namespace troupe {

// Temperature 0.8, min-p 0.05 and a mild DRY (multiplier 0.8, base 1.75, allowed length 2,
// whole context, the default breakers); everything else as SamplingParams' defaults.
[[nodiscard]] SamplingParams ChatSamplingPreset();

// A preset from a JSON object whose keys are SamplingParams' proto field names (temperature,
// top_k, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty,
// penalty_last_n, max_tokens, dry_multiplier, dry_base, dry_allowed_length,
// dry_penalty_last_n, dry_sequence_breakers, xtc_probability, xtc_threshold). Keys it leaves
// out keep SamplingParams' defaults (not the chat preset's): the file is the whole preset.
// kInvalidArgument for malformed JSON, an unknown key, a value of the wrong type, or a value
// ValidateSamplingParams refuses.
[[nodiscard]] absl::StatusOr<SamplingParams> ParseSamplingPreset(std::string_view json);

// ParseSamplingPreset of a file's contents; the message names the file.
[[nodiscard]] absl::StatusOr<SamplingParams> LoadSamplingPreset(const std::string& path);

}  // namespace troupe
