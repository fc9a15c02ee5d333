#include "server/auth/key_file.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace troupe {
namespace {

constexpr absl::string_view kSpecPrefix = "sha256:";

// Parses one non-comment line's fields into `entry`; the error says what is wrong (no file or
// line: the caller adds them).
absl::Status ParseFields(const std::vector<absl::string_view>& fields, KeyEntry& entry) {
  if (fields.size() < 2) {
    return absl::InvalidArgumentError("expected 'TENANT sha256:<64 hex digits> [options]'");
  }
  if (absl::Status status = ValidateTenant(fields[0]); !status.ok()) return status;
  entry.tenant = std::string(fields[0]);
  absl::string_view spec = fields[1];
  if (!absl::ConsumePrefix(&spec, kSpecPrefix)) {
    return absl::InvalidArgumentError(
        "the key must be given as sha256:<64 hex digits> of the key (troupe-cli hash-key prints "
        "it); plain keys are not accepted");
  }
  std::optional<Sha256Digest> digest = DigestFromHex(spec);
  if (!digest.has_value()) {
    return absl::InvalidArgumentError("sha256: must be followed by exactly 64 hex digits");
  }
  entry.digest = *digest;

  for (size_t i = 2; i < fields.size(); ++i) {
    const absl::string_view field = fields[i];
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", field, "' is not NAME=VALUE (max_priority, rpm, tpm, max_streams)"));
    }
    const absl::string_view name = field.substr(0, eq);
    const absl::string_view text = field.substr(eq + 1);
    int64_t value = 0;
    if (!absl::SimpleAtoi(text, &value)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": '", text, "' is not an integer"));
    }
    auto set_positive = [&](auto& target, int64_t max) -> absl::Status {
      if (target.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, " given twice"));
      if (value < 1 || value > max) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " must be 1 to ", max, " (leave it out for no limit)"));
      }
      target = static_cast<std::remove_reference_t<decltype(*target)>>(value);
      return absl::OkStatus();
    };
    absl::Status status;
    if (name == "max_priority") {
      if (entry.limits.max_priority.has_value()) {
        return absl::InvalidArgumentError("max_priority given twice");
      }
      if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
        return absl::InvalidArgumentError("max_priority is outside the 32-bit range of priority");
      }
      entry.limits.max_priority = static_cast<int>(value);
    } else if (name == "rpm") {
      status = set_positive(entry.limits.rpm, int64_t{1} << 40);
    } else if (name == "tpm") {
      status = set_positive(entry.limits.tpm, int64_t{1} << 40);
    } else if (name == "max_streams") {
      status = set_positive(entry.limits.max_streams, int64_t{1} << 20);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option '", name, "' (max_priority, rpm, tpm, max_streams)"));
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > 64) {
    return absl::InvalidArgumentError("the tenant must be 1 to 64 characters");
  }
  for (char c : tenant) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '@') {
      return absl::InvalidArgumentError(
          "the tenant may hold only letters, digits and . _ - @");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<KeyEntry>> ParseKeyFile(absl::string_view text, absl::string_view file_name) {
  std::vector<KeyEntry> entries;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r\f\v"), absl::SkipEmpty());
    if (fields.empty()) continue;
    KeyEntry entry;
    entry.line = line_number;
    if (absl::Status status = ParseFields(fields, entry); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ":", line_number, ": ", status.message()));
    }
    for (const KeyEntry& earlier : entries) {
      if (DigestsEqual(earlier.digest, entry.digest)) {
        return absl::InvalidArgumentError(absl::StrCat(file_name, ":", line_number,
                                                       ": the same key is already on line ",
                                                       earlier.line));
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<KeyEntry>> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the API keys file ", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat("error reading the API keys file ", path));
  }
  return ParseKeyFile(text.str(), path);
}

std::string FormatKeyLine(const KeyEntry& entry) {
  std::string line = absl::StrCat(entry.tenant, " ", kSpecPrefix, DigestToHex(entry.digest));
  const KeyLimits& limits = entry.limits;
  if (limits.max_priority) absl::StrAppend(&line, " max_priority=", *limits.max_priority);
  if (limits.rpm) absl::StrAppend(&line, " rpm=", *limits.rpm);
  if (limits.tpm) absl::StrAppend(&line, " tpm=", *limits.tpm);
  if (limits.max_streams) absl::StrAppend(&line, " max_streams=", *limits.max_streams);
  return line;
}

}  // namespace troupe
