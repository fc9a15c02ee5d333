// JSON files troupe reads from a model folder (config.json, tokenizer.json, tokenizer_config.json,
// the sentence-transformers files): read whole, checked for depth before nlohmann parses them
// (common/json_depth.h), and typed field getters whose errors name the file and the key.
// Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace troupe {

enum class JsonRoot { kObject, kArray };

// Parses `path`; nullopt when the file does not exist. kPermissionDenied when it cannot be read,
// kInvalidArgument when it is not JSON, nests deeper than kMaxJsonDepth or its root is not
// `root`.
[[nodiscard]] absl::StatusOr<std::optional<nlohmann::json>> ReadJsonFile(const std::string& path,
                                                                         JsonRoot root);

// json[key] as an integer in [min_value, max_value]; kInvalidArgument naming `path` and `key`
// when missing, not an integer or out of range.
[[nodiscard]] absl::StatusOr<int64_t> JsonInt(const nlohmann::json& json, const std::string& path,
                                              const char* key, int64_t min_value,
                                              int64_t max_value);
// As JsonInt, but `fallback` when the key is absent or null.
[[nodiscard]] absl::StatusOr<int64_t> JsonIntOr(const nlohmann::json& json,
                                                const std::string& path, const char* key,
                                                int64_t fallback, int64_t min_value,
                                                int64_t max_value);
// json[key] as a number (integer or float), or `fallback` when absent or null.
[[nodiscard]] absl::StatusOr<double> JsonNumberOr(const nlohmann::json& json,
                                                  const std::string& path, const char* key,
                                                  double fallback);
// json[key] as a bool, or `fallback` when absent or null.
[[nodiscard]] absl::StatusOr<bool> JsonBoolOr(const nlohmann::json& json, const std::string& path,
                                              const char* key, bool fallback);
// json[key] as a string, or `fallback` when absent or null.
[[nodiscard]] absl::StatusOr<std::string> JsonStringOr(const nlohmann::json& json,
                                                       const std::string& path, const char* key,
                                                       const std::string& fallback);

}  // namespace troupe
