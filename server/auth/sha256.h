// SHA-256 of API keys (OpenSSL's libcrypto) and a constant-time comparison of digests. The keys
// file stores only digests; a presented key is hashed and compared with every stored digest.
// Safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace troupe {

using Sha256Digest = std::array<uint8_t, 32>;

// The SHA-256 digest of `data`.
Sha256Digest Sha256(absl::string_view data);

// 64 lowercase hex digits.
std::string DigestToHex(const Sha256Digest& digest);

// Parses exactly 64 hex digits (either case); nullopt for anything else.
std::optional<Sha256Digest> DigestFromHex(absl::string_view hex);

// True when a == b. Takes the same time wherever the digests differ (CRYPTO_memcmp), so the
// time of a failed lookup says nothing about how close a guess came.
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace troupe
