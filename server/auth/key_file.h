// The --api-keys file: one key per line,
//   TENANT sha256:<64 hex digits> [max_priority=N] [rpm=N] [tpm=N] [max_streams=N]
// where the digest is the SHA-256 of the key (plain keys are never stored); '#' starts a
// comment, blank lines are skipped. `troupe-cli hash-key` prints such a line. docs/security.md
// has the format. Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/sha256.h"

namespace troupe {

// What one key may do. Every limit is optional: nullopt = no limit.
struct KeyLimits {
  std::optional<int> max_priority = std::nullopt;  // Generate/Chat priorities above it are lowered to it
  std::optional<int64_t> rpm = std::nullopt;       // requests (RPCs of any kind) per minute, >= 1
  std::optional<int64_t> tpm = std::nullopt;       // prompt + completion tokens per minute, >= 1
  std::optional<int> max_streams = std::nullopt;   // concurrent Generate/Chat streams, >= 1

  bool operator==(const KeyLimits&) const = default;
};

struct KeyEntry {
  std::string tenant;  // [A-Za-z0-9._@-], 1 to 64 characters
  Sha256Digest digest{};
  KeyLimits limits;
  int line = 0;  // 1-based line in the file (0 when not from a file)
};

// kInvalidArgument when `tenant` is not 1..64 of [A-Za-z0-9._@-] (tenants name database rows
// and metric labels, so the set is kept plain).
[[nodiscard]] absl::Status ValidateTenant(absl::string_view tenant);

// Parses a whole keys file. kInvalidArgument "FILE:LINE: what is wrong" at the first bad line
// (unknown or repeated option, bad number, bad digest, a digest already on another line).
// `file_name` is only for messages. Never echoes more than the offending token.
[[nodiscard]] absl::StatusOr<std::vector<KeyEntry>> ParseKeyFile(absl::string_view text,
                                                                absl::string_view file_name);

// Reads and parses `path`: kFailedPrecondition naming the file when it cannot be read;
// otherwise ParseKeyFile's result.
[[nodiscard]] absl::StatusOr<std::vector<KeyEntry>> ReadKeyFile(const std::string& path);

// The line of `entry` as the file holds it (no line break), options in a fixed order.
std::string FormatKeyLine(const KeyEntry& entry);

}  // namespace troupe
