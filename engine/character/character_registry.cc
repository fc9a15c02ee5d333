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

}  // namespace

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::FromRecord(
    const std::string& tenant, const CharacterRecord& record) {
  TROUPE_ASSIGN_OR_RETURN(CharacterProfile profile, ParseCharacterCard(record.card_json));
  auto c = std::make_shared<StoredCharacter>();
  c->tenant = tenant;
  c->id = record.id;
  c->profile = std::move(profile);
  c->create_time_ms = record.create_time_ms;
  c->update_time_ms = record.update_time_ms;
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
      StoredCharacter{.tenant = tenant, .id = record.id, .profile = std::move(stored), .create_time_ms = now, .update_time_ms = now});
  cache_[c->id] = c;
  return std::shared_ptr<const StoredCharacter>(c);
}

absl::StatusOr<std::shared_ptr<const StoredCharacter>> CharacterRegistry::Get(const std::string& tenant,
                                                                             const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (auto it = cache_.find(id); it != cache_.end()) {
    if (it->second->tenant != tenant) return NotFound(id);
    return it->second;
  }
  TROUPE_ASSIGN_OR_RETURN(const CharacterRecord record, store_->GetCharacter(tenant, id));
  TROUPE_ASSIGN_OR_RETURN(std::shared_ptr<const StoredCharacter> c, FromRecord(tenant, record));
  cache_[id] = c;
  return c;
}

absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> CharacterRegistry::List(
    const std::string& tenant, const std::string& after_id, int limit) {
  absl::MutexLock lock(&mu_);
  TROUPE_ASSIGN_OR_RETURN(std::vector<CharacterRecord> records,
                          store_->ListCharacters(tenant, {.after_id = after_id, .limit = limit}));
  std::vector<std::shared_ptr<const StoredCharacter>> out;
  for (const CharacterRecord& r : records) {
    auto it = cache_.find(r.id);
    if (it != cache_.end()) {
      out.push_back(it->second);
      continue;
    }
    TROUPE_ASSIGN_OR_RETURN(std::shared_ptr<const StoredCharacter> c, FromRecord(tenant, r));
    cache_[r.id] = c;
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
      .tenant = tenant, .id = id, .profile = std::move(stored), .create_time_ms = old.create_time_ms, .update_time_ms = now});
  cache_[id] = c;
  return std::shared_ptr<const StoredCharacter>(c);
}

absl::Status CharacterRegistry::Delete(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  TROUPE_RETURN_IF_ERROR(store_->DeleteCharacter(tenant, id));
  cache_.erase(id);
  return absl::OkStatus();
}

}  // namespace troupe
