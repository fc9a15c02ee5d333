// CharacterRegistry over a real SQLite file: its cache of parsed characters is bounded (LRU by
// count and by bytes), and an evicted character is parsed again from the Store on its next use.
#include "engine/character/character_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_files.h"

namespace troupe {
namespace {

class CharacterRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open((dir_.path() / "troupe.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  std::string CreateNamed(CharacterRegistry& registry, const std::string& name, size_t description_bytes = 10) {
    CharacterProfile profile;
    profile.name = name;
    profile.description = std::string(description_bytes, 'd');
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> c = registry.Create("", profile);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? (*c)->id : "";
  }

  testing::ScopedTempDir dir_{"character_registry"};
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(CharacterRegistryTest, CacheKeepsAtMostMaxCachedEvictingTheLeastRecentlyUsed) {
  CharacterRegistry registry(store_.get(), {.max_cached = 3});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(CreateNamed(registry, absl::StrCat("c", i)));
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> first = registry.Get("", ids[0]);  // c0 now most recent
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> second = registry.Get("", ids[1]);
  ASSERT_TRUE(second.ok());
  ids.push_back(CreateNamed(registry, "c3"));  // evicts c2, the least recently used
  EXPECT_EQ(registry.num_cached(), 3);

  // Cached ones come back as the same object; the evicted one is parsed afresh from SQLite.
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> again = registry.Get("", ids[0]);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first->get());
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> reloaded = registry.Get("", ids[2]);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ((*reloaded)->profile.name, "c2");
  EXPECT_EQ((*reloaded)->id, ids[2]);
  EXPECT_EQ(registry.num_cached(), 3);  // reloading c2 evicted c1 (c0 and c3 were used later)
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> c1 = registry.Get("", ids[1]);
  ASSERT_TRUE(c1.ok());
  EXPECT_NE(c1->get(), second->get());  // parsed again, equal content
  EXPECT_EQ((*c1)->profile.name, "c1");
  EXPECT_EQ((*c1)->update_time_ms, (*second)->update_time_ms);
}

TEST_F(CharacterRegistryTest, CacheIsBoundedByBytes) {
  constexpr size_t kDescription = 100 << 10;
  CharacterRegistry probe(store_.get());
  const std::string probe_id = CreateNamed(probe, "probe", kDescription);
  const int64_t one = CachedBytes(**probe.Get("", probe_id));
  ASSERT_GT(one, static_cast<int64_t>(2 * kDescription));

  CharacterRegistry registry(store_.get(), {.max_cached = 1000, .max_cached_bytes = 3 * one + one / 2});
  for (int i = 0; i < 10; ++i) CreateNamed(registry, absl::StrCat("c", i), kDescription);
  EXPECT_EQ(registry.num_cached(), 3);
  EXPECT_LE(registry.cached_bytes(), 3 * one + one / 2);
}

TEST_F(CharacterRegistryTest, ListingNeitherFillsNorReordersTheCache) {
  CharacterRegistry registry(store_.get(), {.max_cached = 2});
  const std::string a = CreateNamed(registry, "a");
  const std::string b = CreateNamed(registry, "b");
  const std::string c = CreateNamed(registry, "c");  // evicts a
  absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> all = registry.List("", "", 10);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(registry.num_cached(), 2);
}

TEST_F(CharacterRegistryTest, DeleteDropsTheCachedCopy) {
  CharacterRegistry registry(store_.get(), {.max_cached = 4});
  const std::string id = CreateNamed(registry, "gone");
  EXPECT_EQ(registry.num_cached(), 1);
  ASSERT_TRUE(registry.Delete("", id).ok());
  EXPECT_EQ(registry.num_cached(), 0);
  EXPECT_EQ(registry.cached_bytes(), 0);
  EXPECT_EQ(registry.Get("", id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CharacterRegistryTest, LoreKeysArePreparedOncePerLoadedCharacter) {
  CharacterRegistry registry(store_.get(), {.max_cached = 1});
  CharacterProfile profile;
  profile.name = "Keeper";
  Lorebook book;
  LoreEntry entry;
  entry.keys = {"/lamp(s)?/i"};
  entry.use_regex = true;
  entry.content = "The lamp is old.";
  book.entries.push_back(entry);
  profile.lorebook = book;
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> created = registry.Create("", profile);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_NE((*created)->lore_keys, nullptr);
  EXPECT_EQ((*created)->lore_keys->size(), 1u);
  // Turns reuse the prepared keys while the character stays cached...
  EXPECT_EQ((*registry.Get("", (*created)->id))->lore_keys.get(), (*created)->lore_keys.get());
  // ...whose size counts against the cache's bytes.
  EXPECT_GE(CachedBytes(**created), 2 * static_cast<int64_t>((*created)->profile.raw_card_json.size()) +
                                        (*created)->lore_keys->approx_bytes());
  // Reloaded after eviction, the character gets its keys prepared again.
  CreateNamed(registry, "other");
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> reloaded = registry.Get("", (*created)->id);
  ASSERT_TRUE(reloaded.ok());
  ASSERT_NE((*reloaded)->lore_keys, nullptr);
  EXPECT_NE((*reloaded)->lore_keys.get(), (*created)->lore_keys.get());
  LoreOptions options;
  options.keys = (*reloaded)->lore_keys.get();
  const std::vector<std::string> chat = {"Light the LAMPS"};
  EXPECT_EQ(ActivateLore(*(*reloaded)->profile.lorebook, chat, options).size(), 1u);
  CharacterRegistry plain(store_.get());
  EXPECT_EQ((*plain.Create("", [] {
               CharacterProfile p;
               p.name = "no lore";
               return p;
             }()))->lore_keys,
            nullptr);
}

}  // namespace
}  // namespace troupe
