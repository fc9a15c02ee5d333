// The emotional-RAG memory of role-play sessions (docs/memory.md): it turns finished turns into
// memory units (text, embedding, emotion, importance, times), keeps them durably in a Store and
// in one MemoryIndex per scope, and recalls them for new turns.
//
// Scopes and their keys (every key starts with the tenant: nothing is shared across tenants,
// even if two tenants' clients name the same user_id):
//   session        "s/<tenant>/<session_id>"                  turns of a session whose setup has no user_id
//   user_character "u/<tenant>/<user_id>/<character_id>"      turns of any session of that user and character
//   character      "c/<tenant>/<character_id>"                the character's own experiences (read-only)
// (tenant and user_id are length-prefixed in the keys, so no choice of names makes two equal.)
// A recall searches the session's scope (or its user x character scope) and its character's,
// each with the request's strategy, and merges the hits by the strategy's final score. For
// the combination strategies and semantic-only that equals one search over the union; the
// sequential ones take their candidate pool per scope.
//
// Write path: Remember queues the turn and returns; the writer thread embeds it and stores it
// at once with a provisional emotion (the session's running mood, or the caller's) and the
// default importance, and adds it to its index, so the session's next turn can recall it (a
// Recall for a session waits, up to recall_wait, for that session's queued writes). The rating
// comes after, on a thread of its own: the model rates emotion (unless the caller gave it) and
// importance through low-priority engine requests that age to the clients' priority
// (ModelRaterOptions::promote_after), the store and the index take the rating, and the
// session's mood moves, in turn order. Without a rater, memories are written rated (neutral or
// the caller's emotion) and the mood moves at once. The turn itself is already durable (SessionStore wrote it); a
// memory lost to a crash before its write is rebuilt after the next start: the writer backfills
// the stored turns that have none, in the background, a bounded batch at a time between the
// clients' writes (Load only starts it).
//
// Replicas: on a shared Store (Store::shared()) each replica's indexes also take the memories
// the others store, read by the writer thread every catch_up_interval, between its own writes
// (so a session that moves to another replica recalls its past turns there within about a
// second of their memories being stored).
// Experiences a replica replaces, and memories of sessions it deletes, stay in the others'
// indexes until they restart; neither is recalled by any other session of another tenant.
//
// Thread-safe: Recall runs concurrently with other Recalls (reader lock); the writer thread
// takes the writer lock only to add to an index.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/embedding/text_embedder.h"
#include "engine/memory/memory_index.h"
#include "engine/memory/memory_rater.h"
#include "engine/memory/retrieval_options.h"
#include "engine/store/store.h"

namespace troupe {

struct MemoryServiceOptions {
  float mood_beta = 0.7f;  // session mood <- beta * mood + (1 - beta) * turn emotion
  // Remember fails with kResourceExhausted past this many pending writes. The backfill takes
  // one of them at most (its next batch).
  int max_queue = 1024;
  // The backfill's batch: at most this many turns are remembered before the writes queued
  // meanwhile get their turn. >= 1.
  int backfill_batch_turns = 16;
  // On a shared Store (replicas on one database): how often the writer thread, when idle,
  // indexes the memories other replicas added (Store::ListMemoriesAfter).
  absl::Duration catch_up_interval = absl::Seconds(1);
  // How long a Recall for a session waits for the memories of that session's turns still being
  // written (each takes an embedding and a store write: milliseconds on a free core; under a
  // saturated CPU the writer's queue of other sessions' turns can take seconds).
  absl::Duration recall_wait = absl::Seconds(10);
  // Memories rated in one round of the engine (their questions submitted together).
  int rating_batch = 8;
  // Ratings queued at most; past that a memory keeps its provisional rating until the next
  // start's Load queues it again.
  int64_t max_pending_ratings = 4096;
};

// Where a session's memories live and what it may see.
struct MemoryScopeKeys {
  std::string tenant;  // the session's (and its character's) tenant
  std::string session_id;
  std::string character_id;
  std::string user_id;  // "" = session scope
};

// One finished turn to remember.
struct TurnMemoryInput {
  MemoryScopeKeys keys;
  int turn_index = 0;
  std::string user_text;
  std::string reply_text;
  std::string user_name;       // for the memory text "<user>: ...\n<char>: ..."
  std::string character_name;
  std::optional<int64_t> story_time;      // the session's point in time
  std::optional<EmotionVector> emotion;   // given by the client; else rated
};

struct RecalledUnit {
  MemoryId id = 0;
  MemoryScope scope = MemoryScope::kSession;
  std::string text;
  std::optional<int64_t> story_time;
  RetrievalHit hit;
};

struct RecallRequest {
  MemoryScopeKeys keys;
  std::string query_text;
  EmotionVector query_emotion = kNeutralEmotion;
  std::optional<int64_t> point_in_time;
  RetrievalOptions options;
  // The memories of keys.session_id's turns [skip_turns_from, skip_turns_to) are left out:
  // those turns are still in the rendered history, in front of the model already.
  int skip_turns_from = 0;
  int skip_turns_to = 0;
};

class MemoryService {
 public:
  // `store`, `embedder` and `rater` must outlive the service; rater may be null (every memory
  // then needs an explicit emotion and gets importance 5). on_mood, when set, is called on the
  // writer thread with a session's new mood after each remembered turn.
  MemoryService(Store* store, const TextEmbedder* embedder, MemoryRater* rater,
                const MemoryServiceOptions& options,
                std::function<void(const std::string& session_id, const EmotionVector& mood)> on_mood = {});
  ~MemoryService();  // finishes queued writes, then joins the writer
  MemoryService(const MemoryService&) = delete;
  MemoryService& operator=(const MemoryService&) = delete;

  // Builds the indexes from the store and starts the backfill of the stored turns that have no
  // memory yet, which the writer runs in the background (WaitForBackfill): Load does not wait
  // for it, and its failures are logged, never returned. Call once, before the first Recall or
  // Remember. Errors: reading the stored memories failed.
  [[nodiscard]] absl::Status Load();

  // The memories for a new turn, best first, at most options.k.
  [[nodiscard]] absl::StatusOr<std::vector<RecalledUnit>> Recall(const RecallRequest& request) const;

  // Queues a finished turn. kResourceExhausted when the queue is full.
  [[nodiscard]] absl::Status Remember(TurnMemoryInput turn);

  // Replaces a character's own experiences (character scope) with these, each as a memory.
  struct Experience {
    std::string text;
    std::optional<int64_t> story_time;
    std::optional<EmotionVector> emotion;
  };
  [[nodiscard]] absl::Status SetCharacterExperiences(const std::string& tenant, const std::string& character_id,
                                                     std::vector<Experience> experiences);
  // The same on the writer thread, after the writes queued before it (rating experiences goes
  // through the engine and may take a while). kResourceExhausted when the queue is full.
  [[nodiscard]] absl::Status QueueCharacterExperiences(const std::string& tenant,
                                                       const std::string& character_id,
                                                       std::vector<Experience> experiences);

  // Blocks until every write queued so far is done (at most one batch of the backfill: the rest
  // of it is queued later), then until the ratings queued by then are. For tests and shutdown.
  void Flush();
  // The same, waiting at most `timeout`; true when all of it is done.
  bool Flush(absl::Duration timeout);
  // Only the writes (stored, provisionally rated): what a shutdown waits for after DropQueued.
  void FlushWrites();

  // Drops every queued write that has not started (the one in progress finishes) and returns
  // how many; the backfill stops too. For a shutdown whose grace ran out: the dropped turns are
  // in the store, and the next start's backfill writes their memories; dropped character
  // experiences are indexed again when the character is next updated.
  int64_t DropQueued();

  // Blocks until Load's backfill has run to its end (or was stopped by the destructor). For
  // tests and tools; returns at once when Load was not called.
  void WaitForBackfill();

  int64_t num_memories() const;
  // Writes queued and not finished yet (the one being written included).
  int64_t num_pending_writes() const ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Memories stored with a provisional rating whose rating is queued or being made.
  int64_t num_pending_ratings() const ABSL_LOCKS_EXCLUDED(queue_mu_);
  // How long the oldest of those has waited since its memory was stored; zero when none.
  absl::Duration oldest_pending_rating_age() const ABSL_LOCKS_EXCLUDED(queue_mu_);
  const TextEmbedder& embedder() const { return *embedder_; }

 private:
  struct Entry {  // what the index does not keep
    std::string index_key;  // the scope key of the index that holds it
    MemoryScope scope;
    std::string text;
    std::optional<int64_t> story_time;
    std::string session_id;  // the turn it was made from ("" and -1 for experiences)
    int turn_index = -1;
  };
  struct CharacterExperiences {  // a character's experiences to (re)index
    std::string tenant;
    std::string character_id;
    std::vector<Experience> experiences;
  };
  // Where the backfill goes on: the sessions after `after_session` (ordered by id), starting
  // in the first of them at turn `next_turn` when it is `partial_session`.
  struct BackfillCursor {
    std::string after_session;
    std::string partial_session;
    int next_turn = 0;
  };
  struct Job {
    std::optional<TurnMemoryInput> turn;
    std::optional<CharacterExperiences> experiences;  // or this
    std::optional<BackfillCursor> backfill;           // or the backfill's next batch
  };

  // A memory stored with a provisional rating, to rate.
  struct RatingJob {
    std::string tenant;
    MemoryId id = 0;
    std::string session_id;  // whose mood the rating moves ("" = none)
    std::string text;
    std::optional<EmotionVector> emotion;  // the caller's: only importance is rated
    absl::Time queued_at;
  };

  // Queues `job` for the writer; with `enforce_cap` (every job but the backfill's),
  // kResourceExhausted when max_queue jobs are pending.
  [[nodiscard]] absl::Status Enqueue(Job job, bool enforce_cap) ABSL_LOCKS_EXCLUDED(queue_mu_);
  void WriterLoop();
  void RaterLoop();
  void QueueRating(RatingJob job) ABSL_LOCKS_EXCLUDED(queue_mu_);
  void FinishedWrite(const std::string& session_id, int turn_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // Hands job's rating to the store, the index and the session mood. Rater thread.
  absl::Status Apply(const RatingJob& job, const absl::StatusOr<MemoryRater::Rating>& rating);
  // The session's mood moved by a turn's emotion, stored and reported (on_mood_).
  absl::Status MoveMood(const std::string& tenant, const std::string& session_id, const EmotionVector& emotion);
  // Remembers up to backfill_batch_turns stored turns without a memory from `cursor` on;
  // returns where the next batch starts, nullopt at the end. Writer thread.
  absl::StatusOr<std::optional<BackfillCursor>> BackfillBatch(const BackfillCursor& cursor);
  void EndBackfill() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Writes the memory of `turn`, unless one exists already (the backfill and a client's turn
  // may both reach a turn). Writer thread.
  absl::Status WriteTurn(const TurnMemoryInput& turn);
  absl::Status AddToIndex(const MemoryRecord& record) ABSL_LOCKS_EXCLUDED(mu_);
  // Indexes the stored memories not indexed yet (other replicas') with ids above low_water_,
  // then moves low_water_ up (AdvanceLowWater). Writer thread, shared Stores only.
  void CatchUp();
  // Moves low_water_ over the ids of seen_above_ that follow it without a gap, and over a gap
  // once the memory after it is older than any transaction still open could be: a missing id
  // is then a transaction that rolled back, not one that will commit later.
  void AdvanceLowWater(int64_t now_ms);
  static std::string ScopeKey(MemoryScope scope, const MemoryRecord& record);

  Store* const store_;
  const TextEmbedder* const embedder_;
  MemoryRater* const rater_;
  const MemoryServiceOptions options_;
  const std::function<void(const std::string&, const EmotionVector&)> on_mood_;

  // (session id, turn index) of every turn with a memory. Filled by Load, then writer thread only.
  std::set<std::pair<std::string, int>> remembered_turns_;
  int64_t backfill_before_ms_ = 0;  // the backfill takes turns stored before this; set by Load
  // Catch-up state (shared Stores; Load, then the writer thread): every memory id up to
  // low_water_ has been read (or is known never to commit); seen_above_ holds the ids read
  // above it, with their wall times. Ids come from a sequence, but transactions commit out of
  // order, so a gap below a read id may still fill.
  int64_t low_water_ = 0;
  std::map<int64_t, int64_t> seen_above_;
  absl::Time next_catch_up_ = absl::InfinitePast();

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, MemoryIndex> indexes_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<MemoryId, Entry> entries_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  int64_t queued_ ABSL_GUARDED_BY(queue_mu_) = 0;
  int64_t done_ ABSL_GUARDED_BY(queue_mu_) = 0;
  mutable absl::CondVar done_cv_;  // writes or ratings done, a session's writes done
  // The turn indexes of the writes queued or running, per session (Recall waits for its
  // session's, unless it leaves those turns out anyway).
  std::unordered_map<std::string, std::multiset<int>> writes_by_session_ ABSL_GUARDED_BY(queue_mu_);
  int64_t ratings_skipped_ ABSL_GUARDED_BY(queue_mu_) = 0;  // over max_pending_ratings
  std::deque<RatingJob> ratings_ ABSL_GUARDED_BY(queue_mu_);
  int64_t ratings_queued_ ABSL_GUARDED_BY(queue_mu_) = 0;
  int64_t ratings_done_ ABSL_GUARDED_BY(queue_mu_) = 0;
  std::optional<absl::Time> rating_since_ ABSL_GUARDED_BY(queue_mu_);  // the one being made
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool backfilling_ ABSL_GUARDED_BY(queue_mu_) = false;  // a backfill batch is queued or running
  std::thread writer_;
  std::thread rater_thread_;  // runs when rater_ is set
};

}  // namespace troupe
