// Role-play sessions: a character and the chat history. Inline sessions (a name and a system
// prompt given at creation) live in memory only; sessions of a stored character are durable:
// written through to the Store, loaded back on first use after a restart. Used by the server's
// gRPC reactions and its workers (prompt preparation, turn commits).
//
// Every session, inline or durable, is one tenant's (Store's tenants): the calls a client's RPC
// makes take its tenant, and another tenant's id answers kNotFound as an unknown one does. The
// commit path (SetSummary, SetMood, AppendTurn) takes the id of a session its turn was planned
// from, already the caller's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/memory/emotion.h"
#include "engine/session/character_prompt.h"
#include "engine/store/store.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace troupe {

using SessionId = std::string;  // 32 lowercase hex digits (128 random bits)

// Minimal character; the full profile (persona, style, examples) extends this later.
struct Character {
  std::string name;           // speaker name in raw transcripts; never empty once stored
  std::string system_prompt;  // may be empty
};

// The summary of the next fold, made in the background before the turn that folds needs it
// (turn_planner.h): turns [from_turn, to_turn) folded into the running summary of the first
// from_turn turns. `summary` is unset while it is being made.
struct PendingSummary {
  int from_turn = 0;
  int to_turn = 0;
  std::optional<std::string> summary;
};

// A snapshot of one session. `history` holds the conversation after the character's preamble,
// oldest first: the greeting (stored characters), then per turn the user's message, the turn's
// context (a system message, when memory or lore added one) and the reply. Its size is the
// session's version (it only grows).
struct Session {
  std::string tenant;  // whose it is
  SessionId id;
  Character character;       // inline sessions; for stored characters, name = the character's
  std::string character_id;  // the stored character; "" = inline (in memory only)
  SessionSetup setup;        // stored characters only
  EmotionVector mood = kNeutralEmotion;  // the character's running mood
  std::vector<ChatMessage> history;
  absl::Time create_time;
  int num_turns = 0;
  // The oldest turns folded into a running summary when the prompt outgrew the context: the
  // prompt shows `summary` in place of the first `summarized_turns` turns (history keeps them).
  std::string summary;
  int summarized_turns = 0;
  // update_time_ms of the character version context_tokens were rendered with; a turn of a
  // newer version renders the prompt afresh.
  int64_t character_version = 0;
  // The token ids the last turn ran on (its prompt, then its reply as generated), when that
  // reply ended with the model's end of turn or at max_tokens; empty after a stop string. The next turn's prompt is these
  // tokens plus the continuation (BuildChatContinuation), so every turn's prompt extends the
  // previous one token for token and the prefix cache serves the whole history.
  std::vector<TokenId> context_tokens;
  // The first turn whose context message context_tokens holds: a full render shows only its
  // new turn's context (docs/kv_cache.md, "Long conversations"), the turns appended since add
  // theirs. In memory only: a loaded session has no context_tokens.
  int contexts_from_turn = 0;
  // In memory only; dropped when the summary changes (SetSummary).
  std::optional<PendingSummary> pending_summary;
  // Durable sessions: the Store's SessionRecord::version this copy matches (loaded with it, and
  // counted on by this process's own turns and summaries). On a shared Store a Get that finds
  // the stored version moved on loads the session afresh.
  int64_t store_version = 0;
};

struct SessionStoreOptions {
  int max_sessions = 10000;          // durable sessions in memory; CreateDurable: kResourceExhausted past this
  int max_inline_sessions = 10000;   // inline sessions; Create: kResourceExhausted past this
  int max_history_messages = 4096;   // AppendTurn fails with kResourceExhausted past this
  // An inline session not used (created, read, or given a turn) for this long expires: it is
  // dropped and its id answers kNotFound. Zero or less = never.
  absl::Duration inline_idle_ttl = absl::Hours(1);
  // The clock idle times are measured on; null = absl::Now. Tests that must control time set it.
  std::function<absl::Time()> now;
};

// Owns all sessions. Thread-safe. mu_ guards the in-memory state and is only ever held briefly:
// never across a Store call, so an inline session's calls, size() and a cached Get never wait
// for a disk. A durable session's writes (AppendTurn, SetSummary, Delete) are serialized by a
// mutex of its own, taken before mu_ and held across its Store write, so turns of different
// sessions commit concurrently (as far as the Store allows) while one session's never interleave.
// Get returns a copy so callers can render prompts without any lock.
class SessionStore {
 public:
  // `store` (may be null: no durable sessions) must outlive this.
  explicit SessionStore(const SessionStoreOptions& options = {}, Store* store = nullptr);
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Creates an inline session with an empty history. An empty name becomes "Assistant".
  // kResourceExhausted when max_inline_sessions unexpired inline sessions exist.
  [[nodiscard]] absl::StatusOr<Session> Create(const std::string& tenant, Character character)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Creates a durable session of a stored character (REQUIRES: a Store was given), its history
  // starting with `greeting` when not empty. kNotFound: the character is not the tenant's.
  [[nodiscard]] absl::StatusOr<Session> CreateDurable(const std::string& tenant,
                                                      const std::string& character_id,
                                                      const std::string& character_name,
                                                      const SessionSetup& setup,
                                                      const std::string& greeting)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The tenant's durable sessions ordered by id (of one character when character_id is not
  // empty), without their history. kFailedPrecondition without a Store.
  [[nodiscard]] absl::StatusOr<std::vector<Session>> ListDurable(const std::string& tenant,
                                                                 const std::string& character_id,
                                                                 const std::string& after_id, int limit)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Replaces the running summary (durable sessions: written to the Store). kNotFound.
  [[nodiscard]] absl::Status SetSummary(const SessionId& id, std::string summary, int summarized_turns)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets the cached mood of a session (the memory writer stored it already). Unknown ids are
  // ignored.
  // Claims the making of the next fold's summary, for turns [from_turn, to_turn): false when the
  // session is gone, its summary no longer covers exactly from_turn turns, or a pending summary
  // for that start is already made or being made.
  bool ClaimPendingSummary(const SessionId& id, int from_turn, int to_turn) ABSL_LOCKS_EXCLUDED(mu_);
  // The claimed summary, made (or nullopt: it failed, and the claim is let go). Kept only while
  // the session's summary still covers from_turn turns.
  void SetPendingSummary(const SessionId& id, int from_turn, std::optional<std::string> summary)
      ABSL_LOCKS_EXCLUDED(mu_);

  void SetMood(const SessionId& id, const EmotionVector& mood) ABSL_LOCKS_EXCLUDED(mu_);

  bool durable() const { return store_ != nullptr; }

  // A copy of the session, loaded from the Store on first use after a restart. kNotFound for an
  // unknown id, another tenant's or an expired inline session. Counts as a use of an inline
  // session. On a shared Store (Store::shared(): replicas on one database) a durable session
  // held in memory is checked against the Store's version first (one read), and loaded again
  // when another replica changed it; its mood is taken from the Store either way.
  [[nodiscard]] absl::StatusOr<Session> Get(const std::string& tenant, const SessionId& id) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // kNotFound for an unknown id or another tenant's.
  [[nodiscard]] absl::Status Delete(const std::string& tenant, const SessionId& id) ABSL_LOCKS_EXCLUDED(mu_);

  // One finished turn.
  struct Turn {
    std::string user_message;
    std::string context;  // the turn's system message ("" = none)
    std::string reply;
    std::vector<TokenId> context_tokens;  // replaces Session::context_tokens (empty: render in full)
    int64_t character_version = 0;
    bool rendered_in_full = false;  // the prompt was rendered afresh (Session::contexts_from_turn)
    // The turn folded old turns: the session's new running summary, covering its first
    // new_summarized_turns turns, stored with the turn (one transaction) and dropping any
    // pending summary.
    std::optional<std::string> new_summary;
    int new_summarized_turns = 0;
  };
  // Appends one turn. `base_version` is the history size of the snapshot the turn was rendered
  // from: if another turn landed in between, the turn is refused with kAborted so the history
  // never interleaves two turns; so is a turn another replica committed first (shared Store),
  // and the copy held here is dropped so that the retry loads the session afresh. kNotFound if
  // the session was deleted meanwhile;
  // kResourceExhausted past max_history_messages. A durable session's turn is committed to the
  // Store (synced to disk) before this returns OK.
  [[nodiscard]] absl::Status AppendTurn(const SessionId& id, size_t base_version, Turn turn)
      ABSL_LOCKS_EXCLUDED(mu_);

  int size() const ABSL_LOCKS_EXCLUDED(mu_);
  int num_inline() const ABSL_LOCKS_EXCLUDED(mu_);  // inline sessions held, expired ones included

 private:
  // Get's check of a held durable session on a shared Store: the copy when the Store's version
  // matches it (its mood refreshed), nullopt when it must be loaded (not held, or stale: then it
  // is dropped), kNotFound when it is another tenant's or was deleted elsewhere.
  absl::StatusOr<std::optional<Session>> GetIfCurrent(const std::string& tenant, const SessionId& id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Reads a durable session from the Store (no lock held: disk I/O).
  absl::StatusOr<Session> Load(const std::string& tenant, const SessionId& id) const ABSL_LOCKS_EXCLUDED(mu_);
  // The mutex that serializes the Store writes of session `id`, made on first use. Callers lock
  // it after releasing mu_ (lock order: a session's write mutex, then mu_).
  std::shared_ptr<absl::Mutex> WriteMutexLocked(const SessionId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AppendTurn's checks: the session exists, `base_version` is its history size and the turn
  // fits; sets *session.
  absl::Status CheckAppendLocked(const SessionId& id, size_t base_version, const Turn& turn, Session** session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyTurnLocked(const SessionId& id, Session& session, Turn turn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Now() const { return options_.now ? options_.now() : absl::Now(); }
  bool ExpiredLocked(const SessionId& id, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops every expired inline session.
  void ExpireIdleLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const SessionStoreOptions options_;
  Store* const store_;

  mutable absl::Mutex mu_;
  // Mutable: Get (const) caches durable sessions it loads.
  mutable std::unordered_map<SessionId, Session> sessions_ ABSL_GUARDED_BY(mu_);
  // The inline sessions of sessions_ and when each was last used (Get counts, so mutable).
  mutable std::unordered_map<SessionId, absl::Time> inline_last_use_ ABSL_GUARDED_BY(mu_);
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Per durable session, the mutex of its Store writes (WriteMutexLocked); dropped on Delete.
  std::unordered_map<SessionId, std::shared_ptr<absl::Mutex>> write_mutexes_ ABSL_GUARDED_BY(mu_);
  // Durable sessions deleted so far: Get caches a session it loaded without mu_ only when no
  // delete happened meanwhile, so a delete racing with a load never leaves a ghost in memory.
  uint64_t deletions_ ABSL_GUARDED_BY(mu_) = 0;
  // CreateDurable calls writing their session now, counted against max_sessions.
  int durable_creating_ ABSL_GUARDED_BY(mu_) = 0;
};


// What a durable session stores besides its setup (in the same JSON).
struct SessionExtras {
  std::string greeting;
  std::string summary;
  int summarized_turns = 0;
};
// The JSON a durable session's setup and extras are stored as, and back.
std::string SessionSetupToJson(const SessionSetup& setup, const SessionExtras& extras);
[[nodiscard]] absl::Status SessionSetupFromJson(const std::string& json, SessionSetup* setup,
                                                SessionExtras* extras);

}  // namespace troupe
