// Sampling presets: the built-in chat preset and JSON preset files. See sampling_preset.h.
#include "engine/sampler/sampling_preset.h"

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

using json = nlohmann::json;

// How one key is read into SamplingParams: its setter, which checks the JSON type.
using FieldSetter = std::function<absl::Status(const json&, SamplingParams&)>;

template <typename T>
FieldSetter Number(T SamplingParams::*field) {
  return [field](const json& value, SamplingParams& params) -> absl::Status {
    if constexpr (std::is_integral_v<T>) {
      if (!value.is_number_integer()) return absl::InvalidArgumentError("must be an integer");
      const int64_t v = value.get<int64_t>();
      if (v < INT32_MIN || v > INT32_MAX) return absl::InvalidArgumentError("is out of range");
      params.*field = static_cast<T>(v);
    } else {
      if (!value.is_number()) return absl::InvalidArgumentError("must be a number");
      params.*field = value.get<T>();
    }
    return absl::OkStatus();
  };
}

const std::map<std::string, FieldSetter>& Fields() {
  static const auto* fields = new std::map<std::string, FieldSetter>{
      {"temperature", Number(&SamplingParams::temperature)},
      {"top_k", Number(&SamplingParams::top_k)},
      {"top_p", Number(&SamplingParams::top_p)},
      {"min_p", Number(&SamplingParams::min_p)},
      {"repetition_penalty", Number(&SamplingParams::repetition_penalty)},
      {"presence_penalty", Number(&SamplingParams::presence_penalty)},
      {"frequency_penalty", Number(&SamplingParams::frequency_penalty)},
      {"penalty_last_n", Number(&SamplingParams::penalty_last_n)},
      {"max_tokens", Number(&SamplingParams::max_tokens)},
      {"dry_multiplier", Number(&SamplingParams::dry_multiplier)},
      {"dry_base", Number(&SamplingParams::dry_base)},
      {"dry_allowed_length", Number(&SamplingParams::dry_allowed_length)},
      {"dry_penalty_last_n", Number(&SamplingParams::dry_penalty_last_n)},
      {"dry_sequence_breakers",
       [](const json& value, SamplingParams& params) -> absl::Status {
         if (!value.is_array()) return absl::InvalidArgumentError("must be an array of strings");
         params.dry_sequence_breakers.clear();
         for (const json& item : value) {
           if (!item.is_string()) return absl::InvalidArgumentError("must be an array of strings");
           params.dry_sequence_breakers.push_back(item.get<std::string>());
         }
         return absl::OkStatus();
       }},
      {"xtc_probability", Number(&SamplingParams::xtc_probability)},
      {"xtc_threshold", Number(&SamplingParams::xtc_threshold)},
  };
  return *fields;
}

}  // namespace

SamplingParams ChatSamplingPreset() {
  SamplingParams params;
  params.temperature = 0.8f;
  params.min_p = 0.05f;
  params.dry_multiplier = 0.8f;
  params.dry_base = 1.75f;
  params.dry_allowed_length = 2;
  params.dry_penalty_last_n = -1;
  return params;
}

absl::StatusOr<SamplingParams> ParseSamplingPreset(std::string_view text) {
  // Depth is bounded by the object's shape: anything nested past one array is refused below,
  // and the file is the operator's, not a client's.
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("sampling preset: not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("sampling preset: must be a JSON object");
  SamplingParams params;
  for (const auto& [key, value] : doc.items()) {
    auto field = Fields().find(key);
    if (field == Fields().end()) {
      std::string known;
      for (const auto& [name, unused] : Fields()) absl::StrAppend(&known, known.empty() ? "" : ", ", name);
      return absl::InvalidArgumentError(
          absl::StrCat("sampling preset: unknown key \"", key, "\" (known: ", known, ")"));
    }
    if (absl::Status status = field->second(value, params); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling preset: ", key, " ", status.message()));
    }
  }
  if (absl::Status status = ValidateSamplingParams(params); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling preset: ", status.message()));
  }
  return params;
}

absl::StatusOr<SamplingParams> LoadSamplingPreset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the sampling preset ", path));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<SamplingParams> params = ParseSamplingPreset(text.str());
  if (!params.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", params.status().message()));
  }
  return params;
}

}  // namespace troupe
