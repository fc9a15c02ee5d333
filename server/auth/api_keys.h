// --api-keys: the key table of a multi-tenant server and the CallerResolver over it. A call
// presents `authorization: Bearer <key>` or `x-api-key: <key>`; the key's SHA-256 is compared
// (in constant time) with every line of the table, and the matching line names the caller's
// tenant and limits. Reload() swaps in a new immutable table; RPCs already admitted keep their
// Caller. See docs/security.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/caller.h"
#include "server/auth/key_file.h"
#include "server/auth/key_limiter.h"

namespace troupe {

// Thread-safe: Resolve runs on gRPC threads while Reload runs on the main thread; the table is
// immutable once built and swapped under mu_, which is held only to copy the pointer.
class ApiKeys {
 public:
  // Reads `path` (ReadKeyFile's errors: the file and line of the first bad line).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path);
  // A table from entries already parsed (tests, or keys not from a file; Reload then fails).
  static std::unique_ptr<ApiKeys> FromEntries(std::vector<KeyEntry> entries);

  // Reads the file again and swaps the table. A key that stays (same digest) keeps its bucket
  // levels and open streams under its new limits. On error the old table stays and the error
  // is returned. Returns the number of keys now loaded.
  [[nodiscard]] absl::StatusOr<int> Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // The caller presenting `key`: kUnauthenticated when no line has it.
  [[nodiscard]] absl::StatusOr<Caller> ResolveKey(absl::string_view key) const ABSL_LOCKS_EXCLUDED(mu_);

  // The caller of an RPC from its metadata: kUnauthenticated when it carries no key or an
  // unknown one (the message never repeats the key).
  [[nodiscard]] absl::StatusOr<Caller> Resolve(const grpc::CallbackServerContext& context) const;

  // A resolver for ServerOptions::resolve_caller. REQUIRES: this outlives the server.
  CallerResolver Resolver() const;

  const std::string& path() const { return path_; }
  int num_keys() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Key {
    KeyEntry entry;
    std::shared_ptr<KeyLimiter> limiter;  // null when the line sets no rpm/tpm/max_streams
  };
  using Table = std::vector<Key>;

  explicit ApiKeys(std::string path) : path_(std::move(path)) {}
  // A table for `entries`, reusing the limiters of `previous` (may be null) for kept keys.
  static std::shared_ptr<const Table> BuildTable(std::vector<KeyEntry> entries, const Table* previous);
  std::shared_ptr<const Table> table() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string path_;  // "" when built FromEntries
  mutable absl::Mutex mu_;
  std::shared_ptr<const Table> table_ ABSL_GUARDED_BY(mu_);
};

// The API key an RPC presents: the token of `authorization: Bearer <key>` (scheme in any
// case), else `x-api-key`. "" when there is none.
std::string PresentedKey(const grpc::CallbackServerContext& context);

}  // namespace troupe
