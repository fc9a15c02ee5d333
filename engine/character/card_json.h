// Typed reads of Character Card JSON fields whose errors name the field's path
// ("data.character_book.entries[3].keys: expected an array of strings"). Used only by
// character_card.cc; pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace troupe::card_json {

using json = nlohmann::json;

// "data" + "name" -> "data.name"; "" + "name" -> "name"; a key that is not an identifier is
// quoted: data.extensions["troupe/profile"].
std::string JoinPath(absl::string_view path, absl::string_view key);
std::string IndexPath(absl::string_view path, size_t index);  // "a.b" + 3 -> "a.b[3]"

// kInvalidArgument "<path>: expected <what>".
absl::Status Expected(absl::string_view path, absl::string_view what);
// kInvalidArgument "<path>: <count> <unit> exceeds the limit of <limit>".
absl::Status OverLimit(absl::string_view path, size_t count, absl::string_view unit, size_t limit);

// The value under `key` of an object, or nullptr when it is absent or null: the card formats
// treat both as "not set". REQUIRES: object.is_object().
const json* Find(const json& object, const char* key);

// Each reader below leaves *out unchanged when the key is absent or null, and otherwise
// fails with kInvalidArgument on a wrong type or a string over kMaxCardTextBytes.
// REQUIRES: object.is_object().
absl::Status ToString(const json& value, absl::string_view path, std::string* out);
absl::Status ReadString(const json& object, const char* key, absl::string_view path,
                        std::string* out);
// Replaces *out. Also fails past `max_items` items.
absl::Status ReadStrings(const json& object, const char* key, absl::string_view path,
                         std::vector<std::string>* out,
                         size_t max_items = std::numeric_limits<size_t>::max());
absl::Status ReadBool(const json& object, const char* key, absl::string_view path, bool* out);
// The object under `key`, or nullptr when absent or null.
absl::StatusOr<const json*> FindObject(const json& object, const char* key, absl::string_view path);

// An integral number (1.0 counts, 1.5 does not) in [min, max].
absl::Status ToInteger(const json& value, absl::string_view path, int64_t min, int64_t max,
                       int64_t* out);
// An array of exactly `count` numbers into out[0..count).
absl::Status ToFloats(const json& value, absl::string_view path, size_t count, float* out);

template <typename Int>
absl::Status ReadInteger(const json& object, const char* key, absl::string_view path,
                         std::optional<Int>* out, Int min = std::numeric_limits<Int>::min()) {
  const json* value = Find(object, key);
  if (!value) return absl::OkStatus();
  int64_t v = 0;
  TROUPE_RETURN_IF_ERROR(
      ToInteger(*value, JoinPath(path, key), min, std::numeric_limits<Int>::max(), &v));
  *out = static_cast<Int>(v);
  return absl::OkStatus();
}

absl::Status ReadInt(const json& object, const char* key, absl::string_view path, int* out);

// Whether arrays and objects in JSON `text` nest at most `max_depth` deep. nlohmann's
// serializer and copies recurse once per level, so a hostile "[[[[..." must be refused before
// it is parsed.
bool WithinDepth(std::string_view text, int max_depth);

}  // namespace troupe::card_json
