// ReadJsonFile and the typed field getters.
#include "engine/formats/json_file.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json_depth.h"

namespace troupe {
namespace {

absl::Status WrongType(const std::string& path, const char* key, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": field '", key, "' is not ", want));
}

bool Absent(const nlohmann::json& json, const char* key) {
  const auto it = json.find(key);
  return it == json.end() || it->is_null();
}

}  // namespace

absl::StatusOr<std::optional<nlohmann::json>> ReadJsonFile(const std::string& path,
                                                           JsonRoot root) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::optional<nlohmann::json>();
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read"));
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Operator files, but checked like any JSON troupe parses (common/json_depth.h).
  if (!JsonWithinDepth(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": JSON nested deeper than ", kMaxJsonDepth, " levels"));
  }
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool want_object = root == JsonRoot::kObject;
  if (json.is_discarded() || (want_object ? !json.is_object() : !json.is_array())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON ", want_object ? "object" : "array"));
  }
  return std::optional<nlohmann::json>(std::move(json));
}

absl::StatusOr<int64_t> JsonInt(const nlohmann::json& json, const std::string& path,
                                const char* key, int64_t min_value, int64_t max_value) {
  const auto it = json.find(key);
  if (it == json.end() || !it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing integer field '", key, "'"));
  }
  const int64_t v = it->get<int64_t>();
  if (v < min_value || v > max_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", key, " = ", v, " is outside [", min_value, ", ", max_value, "]"));
  }
  return v;
}

absl::StatusOr<int64_t> JsonIntOr(const nlohmann::json& json, const std::string& path,
                                  const char* key, int64_t fallback, int64_t min_value,
                                  int64_t max_value) {
  if (Absent(json, key)) return fallback;
  return JsonInt(json, path, key, min_value, max_value);
}

absl::StatusOr<double> JsonNumberOr(const nlohmann::json& json, const std::string& path,
                                    const char* key, double fallback) {
  if (Absent(json, key)) return fallback;
  const nlohmann::json& v = json.at(key);
  if (!v.is_number()) return WrongType(path, key, "a number");
  return v.get<double>();
}

absl::StatusOr<bool> JsonBoolOr(const nlohmann::json& json, const std::string& path,
                                const char* key, bool fallback) {
  if (Absent(json, key)) return fallback;
  const nlohmann::json& v = json.at(key);
  if (!v.is_boolean()) return WrongType(path, key, "a bool");
  return v.get<bool>();
}

absl::StatusOr<std::string> JsonStringOr(const nlohmann::json& json, const std::string& path,
                                         const char* key, const std::string& fallback) {
  if (Absent(json, key)) return fallback;
  const nlohmann::json& v = json.at(key);
  if (!v.is_string()) return WrongType(path, key, "a string");
  return v.get<std::string>();
}

}  // namespace troupe
