// The stored characters: create, read, list, update, delete, each written through to the
// Store as a Character Card V3 JSON (troupe's structured fields in its extensions), so what is
// stored is exactly what ExportCharacter returns. Parsed profiles are cached by id.
//
// Every character is one tenant's (Store's tenants): each method takes the caller's tenant, and
// another tenant's id answers kNotFound, from the cache as from the Store.
//
// Thread-safe: every method takes mu_; Store calls happen under it (characters change rarely).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/character/character_profile.h"
#include "engine/store/store.h"

namespace troupe {

struct StoredCharacter {
  std::string tenant;  // whose it is
  std::string id;      // 32 lowercase hex digits
  CharacterProfile profile;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;  // also the version sessions compare to re-render their prompt
};

class CharacterRegistry {
 public:
  // `store` must outlive the registry.
  explicit CharacterRegistry(Store* store) : store_(store) {}

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

 private:
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> FromRecord(const std::string& tenant,
                                                                    const CharacterRecord& record);

  Store* const store_;
  absl::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const StoredCharacter>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace troupe
