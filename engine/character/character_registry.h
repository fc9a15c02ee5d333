// The stored characters: create, read, list, update, delete, each written through to the
// Store as a Character Card V3 JSON (troupe's structured fields in its extensions), so what is
// stored is exactly what ExportCharacter returns. Parsed profiles are cached by id, bounded
// by count and bytes: the least recently used are dropped and parsed from the Store again on
// their next use.
//
// Every character is one tenant's (Store's tenants): each method takes the caller's tenant, and
// another tenant's id answers kNotFound, from the cache as from the Store.
//
// Thread-safe: every method takes mu_; Store calls happen under it (characters change rarely).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/character/character_profile.h"
#include "engine/character/lorebook.h"
#include "engine/store/store.h"

namespace troupe {

struct StoredCharacter {
  std::string tenant;  // whose it is
  std::string id;      // 32 lowercase hex digits
  CharacterProfile profile;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;  // also the version sessions compare to re-render their prompt
  // The lorebook's keys, prepared once for every turn's scan; null without a lorebook.
  std::shared_ptr<const LoreKeys> lore_keys;
};

struct CharacterRegistryOptions {
  int max_cached = 1024;                   // parsed characters kept in memory (at least 1)
  int64_t max_cached_bytes = int64_t{256} << 20;  // their estimated size (CachedBytes)
};

// What a cached character is counted as: twice its card's JSON (the text is kept for lossless
// export, and the parsed fields hold about as much again), its prepared lore keys, and a fixed
// overhead.
int64_t CachedBytes(const StoredCharacter& character);

class CharacterRegistry {
 public:
  // `store` must outlive the registry.
  explicit CharacterRegistry(Store* store, const CharacterRegistryOptions& options = {})
      : store_(store), options_(options) {}

  // Stores a new character (the profile must have a name: kInvalidArgument otherwise).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const StoredCharacter>> Create(const std::string& tenant,
                                                                             CharacterProfile profile)
      ABSL_LOCKS_EXCLUDED(mu_);
  // kNotFound for an unknown id or another tenant's.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const StoredCharacter>> Get(const std::string& tenant,
                                                                          const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The tenant's characters ordered by id, after `after_id`, at most `limit`.
  [[nodiscard]] absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> List(
      const std::string& tenant, const std::string& after_id, int limit) ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the profile (kNotFound for an unknown id or another tenant's).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const StoredCharacter>> Update(const std::string& tenant,
                                                                             const std::string& id,
                                                                             CharacterProfile profile)
      ABSL_LOCKS_EXCLUDED(mu_);
  // kNotFound; kFailedPrecondition while sessions use it.
  [[nodiscard]] absl::Status Delete(const std::string& tenant, const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  int num_cached() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t cached_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Cached {
    std::shared_ptr<const StoredCharacter> character;
    std::list<std::string>::iterator lru;  // its place in lru_
    int64_t bytes = 0;
  };
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> FromRecord(const std::string& tenant,
                                                                    const CharacterRecord& record);
  // The cached character (now the most recently used), or null.
  std::shared_ptr<const StoredCharacter> CacheGetLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Caches `c` as the most recently used, replacing any entry of its id, then evicts from the
  // least recently used end while over a bound (never `c` itself).
  void CachePutLocked(std::shared_ptr<const StoredCharacter> c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CacheEraseLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Store* const store_;
  const CharacterRegistryOptions options_;

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // ids, most recently used first
  int64_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace troupe
