#include "engine/character/character_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "engine/character/character_card.h"

namespace troupe {
namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Worded as the Store words it, so that a cached character of another tenant answers alike.
absl::Status NotFound(const std::string& id) { return absl::NotFoundError(absl::StrCat("character ", id, " not found")); }

// The profile as stored: exported as a V3 card and parsed back, so a character read from the
// store equals the one returned when it was written.
absl::StatusOr<CharacterProfile> Normalize(const CharacterProfile& profile, std::string* card_json) {
  *card_json = ToCharacterCardJson(profile, CardSpec::kV3);
  return ParseCharacterCard(*card_json);
}

void PrepareLoreKeys(StoredCharacter& c) {
  if (c.profile.lorebook) c.lore_keys = LoreKeys::Build(*c.profile.lorebook);
}

}  // namespace

int64_t CachedBytes(const StoredCharacter& character) {
  const int64_t keys = character.lore_keys != nullptr ? character.lore_keys->approx_bytes() : 0;
  return 2 * static_cast<int64_t>(character.profile.raw_card_json.size()) + keys + 4096;
}

std::shared_ptr<const StoredCharacter> CharacterRegistry::CacheGetLocked(const std::string& id) {
  auto it = cache_.find(id);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.character;
}

void CharacterRegistry::CachePutLocked(std::shared_ptr<const StoredCharacter> c) {
  const std::string id = c->id;
  CacheEraseLocked(id);
  lru_.push_front(id);
  const int64_t bytes = CachedBytes(*c);
  cached_bytes_ += bytes;
  cache_[id] = Cached{std::move(c), lru_.begin(), bytes};
  while (lru_.size() > 1 && (static_cast<int>(lru_.size()) > options_.max_cached ||
                             cached_bytes_ > options_.max_cached_bytes)) {
    CacheEraseLocked(lru_.back());
  }
}

void CharacterRegistry::CacheEraseLocked(const std::string& id) {
  auto it = cache_.find(id);
  if (it == cache_.end()) return;
  cached_bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  cache_.erase(it);
}

int CharacterRegistry::num_cached() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(cache_.size());
}

int64_t CharacterRegistry::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::FromRecord(
    const std::string& tenant, const CharacterRecord& record) {
  TROUPE_ASSIGN_OR_RETURN(CharacterProfile profile, ParseCharacterCard(record.card_json));
  auto c = std::make_shared<StoredCharacter>();
  c->tenant = tenant;
  c->id = record.id;
  c->profile = std::move(profile);
  c->create_time_ms = record.create_time_ms;
  c->update_time_ms = record.update_time_ms;
  PrepareLoreKeys(*c);
  return std::shared_ptr<const StoredCharacter>(std::move(c));
}

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::Create(const std::string& tenant,
                                                                                CharacterProfile profile) {
  if (profile.name.empty()) return absl::InvalidArgumentError("profile.name is empty");
  std::string card_json;
  TROUPE_ASSIGN_OR_RETURN(CharacterProfile stored, Normalize(profile, &card_json));
  const int64_t now = NowMs();
  const CharacterRecord record{.id = NewRandomId(), .card_json = card_json, .create_time_ms = now,
                               .update_time_ms = now};
  absl::MutexLock lock(&mu_);
  TROUPE_RETURN_IF_ERROR(store_->PutCharacter(tenant, record));
  auto c = std::make_shared<StoredCharacter>(
      StoredCharacter{.tenant = tenant, .id = record.id, .profile = std::move(stored), .create_time_ms = now, .update_time_ms = now,
                      .lore_keys = nullptr});
  PrepareLoreKeys(*c);
  CachePutLocked(c);
  return std::shared_ptr<const StoredCharacter>(c);
}

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::Get(const std::string& tenant,
                                                                             const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (std::shared_ptr<const StoredCharacter> cached = CacheGetLocked(id)) {
    if (cached->tenant != tenant) return NotFound(id);
    return cached;
  }
  TROUPE_ASSIGN_OR_RETURN(const CharacterRecord record, store_->GetCharacter(tenant, id));
  TROUPE_ASSIGN_OR_RETURN(std::shared_ptr<const StoredCharacter> c, FromRecord(tenant, record));
  CachePutLocked(c);
  return c;
}

absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> CharacterRegistry::List(
    const std::string& tenant, const std::string& after_id, int limit) {
  absl::MutexLock lock(&mu_);
  TROUPE_ASSIGN_OR_RETURN(std::vector<CharacterRecord> records,
                          store_->ListCharacters(tenant, {.after_id = after_id, .limit = limit}));
  std::vector<std::shared_ptr<const StoredCharacter>> out;
  for (const CharacterRecord& r : records) {
    // A listing is not a use: it neither reorders nor fills the cache.
    if (auto it = cache_.find(r.id); it != cache_.end()) {
      out.push_back(it->second.character);
      continue;
    }
    TROUPE_ASSIGN_OR_RETURN(std::shared_ptr<const StoredCharacter> c, FromRecord(tenant, r));
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::Update(const std::string& tenant,
                                                                                const std::string& id,
                                                                                CharacterProfile profile) {
  if (profile.name.empty()) return absl::InvalidArgumentError("profile.name is empty");
  std::string card_json;
  TROUPE_ASSIGN_OR_RETURN(CharacterProfile stored, Normalize(profile, &card_json));
  absl::MutexLock lock(&mu_);
  TROUPE_ASSIGN_OR_RETURN(const CharacterRecord old, store_->GetCharacter(tenant, id));
  // Strictly increasing, even for two updates within one millisecond.
  const int64_t now = std::max(NowMs(), old.update_time_ms + 1);
  TROUPE_RETURN_IF_ERROR(store_->PutCharacter(
      tenant, {.id = id, .card_json = card_json, .create_time_ms = old.create_time_ms, .update_time_ms = now}));
  auto c = std::make_shared<StoredCharacter>(StoredCharacter{
      .tenant = tenant, .id = id, .profile = std::move(stored), .create_time_ms = old.create_time_ms, .update_time_ms = now,
      .lore_keys = nullptr});
  PrepareLoreKeys(*c);
  CachePutLocked(c);
  return std::shared_ptr<const StoredCharacter>(c);
}

absl::Status CharacterRegistry::Delete(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  TROUPE_RETURN_IF_ERROR(store_->DeleteCharacter(tenant, id));
  CacheEraseLocked(id);
  return absl::OkStatus();
}

}  // namespace troupe
