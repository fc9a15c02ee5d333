#include "engine/character/card_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "engine/character/character_card.h"

namespace troupe::card_json {
namespace {

absl::Status CheckText(const std::string& text, absl::string_view path) {
  if (text.size() > kMaxCardTextBytes) {
    return OverLimit(path, text.size(), "bytes", kMaxCardTextBytes);
  }
  return absl::OkStatus();
}

}  // namespace

std::string JoinPath(absl::string_view path, absl::string_view key) {
  const bool plain = !key.empty() && key.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_") == key.npos;
  if (!plain) return absl::StrCat(path, "[\"", key, "\"]");
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

std::string IndexPath(absl::string_view path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

absl::Status Expected(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": expected ", what));
}

absl::Status OverLimit(absl::string_view path, size_t count, absl::string_view unit, size_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", count, " ", unit, " exceeds the limit of ", limit));
}

const json* Find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

absl::Status ToString(const json& value, absl::string_view path, std::string* out) {
  if (!value.is_string()) return Expected(path, "a string");
  *out = value.get<std::string>();
  return CheckText(*out, path);
}

absl::Status ReadString(const json& object, const char* key, absl::string_view path,
                        std::string* out) {
  const json* value = Find(object, key);
  return value ? ToString(*value, JoinPath(path, key), out) : absl::OkStatus();
}

absl::Status ReadStrings(const json& object, const char* key, absl::string_view path,
                         std::vector<std::string>* out, size_t max_items) {
  const json* value = Find(object, key);
  if (!value) return absl::OkStatus();
  const std::string field = JoinPath(path, key);
  if (!value->is_array()) return Expected(field, "an array of strings");
  if (value->size() > max_items) return OverLimit(field, value->size(), "items", max_items);
  out->clear();
  for (size_t i = 0; i < value->size(); ++i) {
    if (!(*value)[i].is_string()) return Expected(field, "an array of strings");
    out->push_back((*value)[i].get<std::string>());
    TROUPE_RETURN_IF_ERROR(CheckText(out->back(), IndexPath(field, i)));
  }
  return absl::OkStatus();
}

absl::Status ReadBool(const json& object, const char* key, absl::string_view path, bool* out) {
  const json* value = Find(object, key);
  if (!value) return absl::OkStatus();
  if (!value->is_boolean()) return Expected(JoinPath(path, key), "a boolean");
  *out = value->get<bool>();
  return absl::OkStatus();
}

absl::StatusOr<const json*> FindObject(const json& object, const char* key,
                                       absl::string_view path) {
  const json* value = Find(object, key);
  if (value && !value->is_object()) return Expected(JoinPath(path, key), "an object");
  return value;
}

absl::Status ToInteger(const json& value, absl::string_view path, int64_t min, int64_t max,
                       int64_t* out) {
  const char* what = min >= 0 ? "a non-negative integer" : "an integer";
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(max)) return Expected(path, what);
    *out = static_cast<int64_t>(value.get<uint64_t>());
  } else if (value.is_number_integer()) {
    *out = value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    // The range test comes first: casting an out-of-range double to int64_t is undefined.
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != static_cast<double>(static_cast<int64_t>(d))) {
      return Expected(path, what);
    }
    *out = static_cast<int64_t>(d);
  } else {
    return Expected(path, what);
  }
  return *out < min || *out > max ? Expected(path, what) : absl::OkStatus();
}

absl::Status ToFloats(const json& value, absl::string_view path, size_t count, float* out) {
  const std::string what = absl::StrCat("an array of ", count, " numbers within float's range");
  if (!value.is_array() || value.size() != count) return Expected(path, what);
  for (size_t i = 0; i < count; ++i) {
    if (!value[i].is_number()) return Expected(path, what);
    // Past float's range the value would become infinity (and the conversion is undefined),
    // which no export could write back as a number.
    const double d = value[i].get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) return Expected(path, what);
    out[i] = static_cast<float>(d);
  }
  return absl::OkStatus();
}

absl::Status ReadInt(const json& object, const char* key, absl::string_view path, int* out) {
  std::optional<int> v;
  TROUPE_RETURN_IF_ERROR(ReadInteger<int>(object, key, path, &v));
  if (v) *out = *v;
  return absl::OkStatus();
}

bool WithinDepth(std::string_view text, int max_depth) { return JsonWithinDepth(text, max_depth); }

}  // namespace troupe::card_json
