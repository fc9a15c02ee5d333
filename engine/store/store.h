// Durable storage of characters, sessions, turns and memories: the records the role-play layer
// keeps across restarts. An interface, so that a networked database can serve several replicas
// later; SqliteStore (sqlite_store.h) is the embedded default.
//
// Records are plain data: the character is kept as its Character Card JSON (engine/session/
// character_card.h), a session's setup as JSON text, a memory's vectors as float arrays. The
// store validates nothing about their contents; callers validate input before storing it.
//
// Tenants: every record belongs to one tenant (the caller's API key's; "" = the anonymous tenant
// of a server without keys). Every call that reads or writes a character, session, turn or
// memory takes the tenant as its first argument and sees only that tenant's records: another
// tenant's id answers kNotFound exactly like an unknown one. Ids are unique across tenants
// (random, server-chosen). Only the two start-up listings (ListMemories,
// ListSessionsOfAllTenants) cross tenants; their records say whose they are.
//
// Durability: a call that returns OK has committed; its effect survives the process being
// killed at any later moment (kill -9), since commits are synced to disk before returning.
//
// Thread-safe: implementations serialise calls internally.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/store/memory_scope.h"  // stored as its integer value

namespace troupe {

struct CharacterRecord {
  std::string id;
  std::string card_json;  // chara_card_v3 JSON with troupe's fields under data.extensions
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
};

struct SessionRecord {
  std::string tenant;  // filled in by reads; writes take the tenant argument instead
  std::string id;
  std::string character_id;
  std::string user_id;     // the tenant's user the session belongs to ("" = anonymous)
  std::string setup_json;  // persona, scenario, point in time, ... (server/session layer)
  std::array<float, 8> mood{};  // running Plutchik mood, updated after every turn
  int64_t create_time_ms = 0;
  // Filled in by reads: bumped by every AppendTurn and UpdateSessionSetup of the session (not
  // by mood updates). A process holding a copy of the session compares it with the version it
  // loaded to learn whether another process changed the session since (Store::shared()).
  int64_t version = 0;
};

struct TurnRecord {
  std::string session_id;
  int turn_index = 0;  // 0, 1, 2, ... per session, no gaps
  std::string user_text;
  std::string context_text;  // what memory and lore added to the turn's prompt ("" for none)
  std::string reply_text;
  int64_t time_ms = 0;
  // Writes only (AppendTurn): when set, replaces the session's setup_json in the same
  // transaction (a turn that folded old turns into a new summary), so a turn that is refused
  // leaves the setup as it was.
  std::optional<std::string> setup_json;
};

struct MemoryRecord {
  std::string tenant;  // filled in by reads; writes take the tenant argument instead
  int64_t id = 0;  // assigned by AddMemory
  MemoryScope scope = MemoryScope::kSession;
  std::string character_id;
  std::string user_id;
  std::string session_id;  // the session it came from, in every scope ("" for experiences)
  int turn_index = -1;     // the turn it was made from; -1 for a character's own experiences
  std::string text;
  std::vector<float> embedding;
  std::array<float, 8> emotion{};
  float importance = 5;
  int64_t wall_time_ms = 0;
  std::optional<int64_t> story_time;  // TimeChara ordinal; none = timeless
  // false: emotion and importance are provisional (stored when the turn was acknowledged; the
  // model's rating replaces them through UpdateMemoryRating).
  bool rated = true;
};

// Paging for List* calls: records ordered by id; `after_id` = the last id of the previous page.
struct PageRequest {
  std::string after_id;
  int limit = 100;
};

class Store {
 public:
  virtual ~Store() = default;

  // Whether other processes may write these records too (a database shared by replicas): then
  // a copy held in memory may be stale, and a holder checks SessionRecord::version before
  // trusting it. False for a store this process alone writes.
  virtual bool shared() const { return false; }

  // Inserts or replaces a character of `tenant` (same id: card and update time replaced).
  // kNotFound when the id is another tenant's.
  [[nodiscard]] virtual absl::Status PutCharacter(const std::string& tenant,
                                                  const CharacterRecord& character) = 0;
  // kNotFound for an unknown id (or another tenant's).
  [[nodiscard]] virtual absl::StatusOr<CharacterRecord> GetCharacter(const std::string& tenant,
                                                                     const std::string& id) = 0;
  // The tenant's characters only.
  [[nodiscard]] virtual absl::StatusOr<std::vector<CharacterRecord>> ListCharacters(
      const std::string& tenant, const PageRequest& page) = 0;
  // Deletes the character and its kCharacter memories. kNotFound for an unknown id;
  // kFailedPrecondition while sessions still use it.
  [[nodiscard]] virtual absl::Status DeleteCharacter(const std::string& tenant, const std::string& id) = 0;

  // kAlreadyExists for a taken id; kNotFound when the character is not the tenant's.
  [[nodiscard]] virtual absl::Status CreateSession(const std::string& tenant,
                                                   const SessionRecord& session) = 0;
  [[nodiscard]] virtual absl::StatusOr<SessionRecord> GetSession(const std::string& tenant,
                                                                 const std::string& id) = 0;
  // The tenant's sessions of one character when character_id is not empty, else all of them.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SessionRecord>> ListSessions(
      const std::string& tenant, const std::string& character_id, const PageRequest& page) = 0;
  // Every tenant's sessions, ordered by id (the server's start-up backfill of memories).
  [[nodiscard]] virtual absl::StatusOr<std::vector<SessionRecord>> ListSessionsOfAllTenants(
      const PageRequest& page) = 0;
  // Replaces setup_json (kNotFound for an unknown id).
  [[nodiscard]] virtual absl::Status UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                                        const std::string& setup_json) = 0;
  // Deletes the session, its turns and its kSession memories; memories of wider scopes stay.
  [[nodiscard]] virtual absl::Status DeleteSession(const std::string& tenant, const std::string& id) = 0;

  // Appends turn `turn.turn_index`, which must be the session's next: kAborted otherwise (another
  // writer appended first; read the session again), kNotFound for an unknown session.
  [[nodiscard]] virtual absl::Status AppendTurn(const std::string& tenant, const TurnRecord& turn) = 0;
  [[nodiscard]] virtual absl::Status UpdateSessionMood(const std::string& tenant, const std::string& id,
                                                       const std::array<float, 8>& mood) = 0;
  // All turns of a session, oldest first (none for another tenant's session).
  [[nodiscard]] virtual absl::StatusOr<std::vector<TurnRecord>> ListTurns(
      const std::string& tenant, const std::string& session_id) = 0;

  // Stores a memory of `tenant` (memory.tenant is ignored) and returns its id. On a shared store,
  // kAlreadyExists when a memory of the same session, turn and scope exists (another process
  // remembered that turn first); a store one process writes leaves that check to its caller.
  [[nodiscard]] virtual absl::StatusOr<int64_t> AddMemory(const std::string& tenant,
                                                          const MemoryRecord& memory) = 0;
  // Replaces the kCharacter memories of a character with these (ids assigned), atomically.
  // kNotFound when the character is not the tenant's.
  [[nodiscard]] virtual absl::Status ReplaceCharacterMemories(
      const std::string& tenant, const std::string& character_id,
      const std::vector<MemoryRecord>& memories) = 0;
  // Replaces a memory's emotion and importance and marks it rated (the rating of a memory
  // stored with provisional ones). kNotFound when the memory is gone (its session was deleted
  // meanwhile) or rated already (replicas on one database may both rate what a crash left
  // unrated: the first one counts). The default is for stores that never hold an unrated memory.
  [[nodiscard]] virtual absl::Status UpdateMemoryRating(const std::string& tenant, int64_t id,
                                                        const std::array<float, 8>& emotion, float importance) {
    (void)tenant, (void)id, (void)emotion, (void)importance;
    return absl::UnimplementedError("this store keeps no unrated memories");
  }
  [[nodiscard]] virtual absl::StatusOr<std::vector<MemoryRecord>> ListCharacterMemories(
      const std::string& tenant, const std::string& character_id) = 0;
  // Every tenant's memories, oldest first (the server builds its in-memory indexes from them at
  // start); each record's tenant is set.
  [[nodiscard]] virtual absl::StatusOr<std::vector<MemoryRecord>> ListMemories() = 0;
  // Every tenant's memories with ids above `after_id`, oldest first, at most `limit`: how a
  // process on a shared store learns of the memories others added. Ids grow with each memory
  // added, though on a shared store a memory may become visible after one with a higher id
  // (transactions commit out of order): readers look back a little. The default filters
  // ListMemories; stores shared by processes answer it with one indexed read.
  [[nodiscard]] virtual absl::StatusOr<std::vector<MemoryRecord>> ListMemoriesAfter(int64_t after_id, int limit) {
    absl::StatusOr<std::vector<MemoryRecord>> all = ListMemories();
    if (!all.ok()) return all.status();
    std::vector<MemoryRecord> out;
    for (MemoryRecord& m : *all) {
      if (m.id > after_id && static_cast<int>(out.size()) < limit) out.push_back(std::move(m));
    }
    return out;
  }
  // Memories made from the turns of one session (any scope), oldest first.
  [[nodiscard]] virtual absl::StatusOr<std::vector<MemoryRecord>> ListSessionMemories(
      const std::string& tenant, const std::string& session_id) = 0;
};

}  // namespace troupe
