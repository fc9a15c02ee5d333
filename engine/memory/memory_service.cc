#include "engine/memory/memory_service.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/memory/emotion.h"
#include "engine/memory/memory_unit.h"

namespace troupe {
namespace {

constexpr float kDefaultImportance = 5.0f;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Tenant and user id are client-chosen text, so they are length-prefixed: no two (tenant, user)
// pairs give one key.
std::string SessionKey(const std::string& tenant, const std::string& session_id) {
  return absl::StrCat("s/", tenant.size(), ":", tenant, "/", session_id);
}
std::string UserCharacterKey(const std::string& tenant, const std::string& user_id,
                             const std::string& character_id) {
  return absl::StrCat("u/", tenant.size(), ":", tenant, "/", user_id.size(), ":", user_id, "/", character_id);
}
std::string CharacterKey(const std::string& tenant, const std::string& character_id) {
  return absl::StrCat("c/", tenant.size(), ":", tenant, "/", character_id);
}

// The key of the scope a session's turns are written to.
std::string TurnScopeKey(const MemoryScopeKeys& keys) {
  return keys.user_id.empty() ? SessionKey(keys.tenant, keys.session_id)
                              : UserCharacterKey(keys.tenant, keys.user_id, keys.character_id);
}

MemoryUnit UnitOf(const MemoryRecord& r) {
  MemoryUnit u;
  u.id = r.id;
  u.scope = r.scope;
  u.text = r.text;
  u.embedding = r.embedding;
  u.emotion = r.emotion;
  u.importance = r.importance;
  u.wall_time_ms = r.wall_time_ms;
  u.story_time = r.story_time;
  u.turn_index = r.turn_index;
  return u;
}

}  // namespace

MemoryService::MemoryService(Store* store, const TextEmbedder* embedder, MemoryRater* rater,
                             const MemoryServiceOptions& options,
                             std::function<void(const std::string&, const EmotionVector&)> on_mood)
    : store_(store), embedder_(embedder), rater_(rater), options_(options), on_mood_(std::move(on_mood)) {
  writer_ = std::thread([this] { WriterLoop(); });
  if (rater_ != nullptr) rater_thread_ = std::thread([this] { RaterLoop(); });
}

MemoryService::~MemoryService() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  writer_.join();
  // The ratings left stay provisional in the store (rated false); the next Load queues them.
  if (rater_thread_.joinable()) rater_thread_.join();
}

std::string MemoryService::ScopeKey(MemoryScope scope, const MemoryRecord& r) {
  switch (scope) {
    case MemoryScope::kSession:
      return SessionKey(r.tenant, r.session_id);
    case MemoryScope::kUserCharacter:
      return UserCharacterKey(r.tenant, r.user_id, r.character_id);
    case MemoryScope::kCharacter:
      return CharacterKey(r.tenant, r.character_id);
  }
  return "";
}

absl::Status MemoryService::AddToIndex(const MemoryRecord& record) {
  absl::MutexLock lock(&mu_);
  const std::string key = ScopeKey(record.scope, record);
  auto it = indexes_.find(key);
  if (it == indexes_.end()) it = indexes_.emplace(key, MemoryIndex(embedder_->dim())).first;
  TROUPE_RETURN_IF_ERROR(it->second.Add(UnitOf(record)));
  entries_[record.id] = Entry{.index_key = key,
                              .scope = record.scope,
                              .text = record.text,
                              .story_time = record.story_time,
                              .session_id = record.session_id,
                              .turn_index = record.turn_index};
  return absl::OkStatus();
}

absl::Status MemoryService::Load() {
  TROUPE_ASSIGN_OR_RETURN(std::vector<MemoryRecord> records, store_->ListMemories());
  int skipped = 0;
  for (const MemoryRecord& r : records) {
    if (store_->shared()) seen_above_.emplace(r.id, r.wall_time_ms);
    if (r.turn_index >= 0) remembered_turns_.emplace(r.session_id, r.turn_index);
    if (static_cast<int>(r.embedding.size()) != embedder_->dim()) {
      ++skipped;  // made by another embedding model; not searchable with this one
      continue;
    }
    const absl::Status added = AddToIndex(r);
    if (!added.ok()) {
      ++skipped;
      TROUPE_LOG_WARNING("memory %lld not indexed: %s", static_cast<long long>(r.id),
                         added.ToString().c_str());
    }
  }
  if (skipped > 0) TROUPE_LOG_WARNING("%d stored memories could not be indexed", skipped);
  // Memories a crash or a shutdown left with their provisional rating are rated now.
  if (rater_ != nullptr) {
    for (const MemoryRecord& r : records) {
      if (r.rated || r.turn_index < 0) continue;
      QueueRating(RatingJob{.tenant = r.tenant, .id = r.id, .session_id = r.session_id, .text = r.text,
                            .emotion = std::nullopt, .queued_at = absl::Now()});
    }
  }
  AdvanceLowWater(NowMs());
  TROUPE_LOG_INFO("memory: %lld memories indexed", static_cast<long long>(num_memories()));
  // Backfill: turns acknowledged before a crash whose memory was still queued. Only turns
  // stored before now: later ones are this run's, remembered by their own Remember.
  backfill_before_ms_ = NowMs();
  {
    absl::MutexLock lock(&queue_mu_);
    backfilling_ = true;
  }
  return Enqueue(Job{.turn = std::nullopt, .experiences = std::nullopt, .backfill = BackfillCursor{}},
                 /*enforce_cap=*/false);
}

absl::StatusOr<std::optional<MemoryService::BackfillCursor>> MemoryService::BackfillBatch(
    const BackfillCursor& cursor) {
  constexpr int kSessionsPerBatch = 64;  // bounds the reads of a batch that finds nothing to do
  int budget = std::max(1, options_.backfill_batch_turns);
  TROUPE_ASSIGN_OR_RETURN(std::vector<SessionRecord> sessions,
                          store_->ListSessionsOfAllTenants({.after_id = cursor.after_session, .limit = kSessionsPerBatch}));
  if (sessions.empty()) return std::nullopt;
  std::string after = cursor.after_session;
  for (const SessionRecord& s : sessions) {
    const int from = s.id == cursor.partial_session ? cursor.next_turn : 0;
    TROUPE_ASSIGN_OR_RETURN(std::vector<TurnRecord> turns, store_->ListTurns(s.tenant, s.id));
    for (const TurnRecord& t : turns) {
      if (t.turn_index < from || t.time_ms >= backfill_before_ms_ ||
          remembered_turns_.contains({s.id, t.turn_index})) {
        continue;
      }
      if (budget == 0) return BackfillCursor{.after_session = after, .partial_session = s.id, .next_turn = t.turn_index};
      --budget;
      TurnMemoryInput in;
      in.keys = {.tenant = s.tenant, .session_id = s.id, .character_id = s.character_id, .user_id = s.user_id};
      in.turn_index = t.turn_index;
      in.user_text = t.user_text;
      in.reply_text = t.reply_text;
      const absl::Status written = WriteTurn(in);
      if (absl::IsUnavailable(written)) return written;  // the rater's engine is shutting down
      if (!written.ok()) {
        TROUPE_LOG_WARNING("memory backfill: session %s turn %d not remembered: %s", s.id.c_str(),
                           t.turn_index, written.ToString().c_str());
      }
    }
    after = s.id;
  }
  return BackfillCursor{.after_session = after, .partial_session = "", .next_turn = 0};
}

void MemoryService::WaitForBackfill() {
  absl::MutexLock lock(&queue_mu_);
  while (backfilling_) done_cv_.Wait(&queue_mu_);
}

absl::StatusOr<std::vector<RecalledUnit>> MemoryService::Recall(const RecallRequest& request) const {
  TROUPE_RETURN_IF_ERROR(ValidateRetrievalOptions(request.options));
  if (!request.keys.session_id.empty()) {
    // The session's acknowledged turns are searchable first: wait for the queued writes of
    // those this recall would not leave out (the prompt does not show them any more).
    const auto awaited = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
      const auto it = writes_by_session_.find(request.keys.session_id);
      if (it == writes_by_session_.end()) return false;
      for (int turn : it->second) {
        if (turn < request.skip_turns_from || turn >= request.skip_turns_to) return true;
      }
      return false;
    };
    const absl::Time deadline = absl::Now() + options_.recall_wait;
    absl::MutexLock lock(&queue_mu_);
    while (awaited()) {
      if (done_cv_.WaitWithDeadline(&queue_mu_, deadline)) break;
    }
  }
  TROUPE_ASSIGN_OR_RETURN(std::vector<float> embedding, embedder_->Embed(request.query_text));
  RetrievalQuery query;
  query.embedding = embedding;
  query.emotion = request.query_emotion;
  query.point_in_time = request.point_in_time;
  query.now_ms = NowMs();
  const std::string keys[] = {TurnScopeKey(request.keys),
                              CharacterKey(request.keys.tenant, request.keys.character_id)};
  const int num_skipped = std::max(0, request.skip_turns_to - request.skip_turns_from);
  const auto skipped = [&request](const Entry& e) {
    return e.turn_index >= request.skip_turns_from && e.turn_index < request.skip_turns_to &&
           e.session_id == request.keys.session_id;
  };
  std::vector<RecalledUnit> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const std::string& key : keys) {
    auto it = indexes_.find(key);
    if (it == indexes_.end()) continue;
    // As many more hits as there are memories to leave out (one per turn), so that k remain.
    RetrievalOptions options = request.options;
    if (key == keys[0]) {
      options.k += num_skipped;
      options.pool += num_skipped;
    }
    TROUPE_ASSIGN_OR_RETURN(std::vector<RetrievalHit> hits, it->second.Search(query, options));
    for (const RetrievalHit& hit : hits) {
      const Entry& e = entries_.at(hit.id);
      if (skipped(e)) continue;
      out.push_back({.id = hit.id, .scope = e.scope, .text = e.text, .story_time = e.story_time, .hit = hit});
    }
  }
  // Merge by the strategy's final key: ascending distances, descending weighted score.
  const bool descending = request.options.strategy == RetrievalStrategy::kWeighted;
  std::stable_sort(out.begin(), out.end(), [descending](const RecalledUnit& a, const RecalledUnit& b) {
    if (a.hit.score != b.hit.score) return descending ? a.hit.score > b.hit.score : a.hit.score < b.hit.score;
    return a.id < b.id;
  });
  if (static_cast<int>(out.size()) > request.options.k) out.resize(request.options.k);
  return out;
}

absl::Status MemoryService::Enqueue(Job job, bool enforce_cap) {
  absl::MutexLock lock(&queue_mu_);
  if (enforce_cap && static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError("memory write queue is full");
  }
  if (job.turn) writes_by_session_[job.turn->keys.session_id].insert(job.turn->turn_index);
  queue_.push_back(std::move(job));
  ++queued_;
  return absl::OkStatus();
}

void MemoryService::FinishedWrite(const std::string& session_id, int turn_index) {
  auto it = writes_by_session_.find(session_id);
  if (it == writes_by_session_.end()) return;
  auto turn = it->second.find(turn_index);
  if (turn != it->second.end()) it->second.erase(turn);
  if (it->second.empty()) writes_by_session_.erase(it);
}

void MemoryService::QueueRating(RatingJob job) {
  absl::MutexLock lock(&queue_mu_);
  if (static_cast<int64_t>(ratings_.size()) >= options_.max_pending_ratings) {
    // Stays provisional in the store; the next start's Load queues it again.
    ++ratings_skipped_;
    return;
  }
  ratings_.push_back(std::move(job));
  ++ratings_queued_;
}

absl::Status MemoryService::Remember(TurnMemoryInput turn) {
  return Enqueue(Job{.turn = std::move(turn), .experiences = std::nullopt, .backfill = std::nullopt},
                 /*enforce_cap=*/true);
}

absl::Status MemoryService::QueueCharacterExperiences(const std::string& tenant, const std::string& character_id,
                                                      std::vector<Experience> experiences) {
  return Enqueue(Job{.turn = std::nullopt,
                     .experiences = CharacterExperiences{.tenant = tenant, .character_id = character_id,
                                                         .experiences = std::move(experiences)},
                     .backfill = std::nullopt},
                 /*enforce_cap=*/true);
}

absl::Status MemoryService::SetCharacterExperiences(const std::string& tenant, const std::string& character_id,
                                                    std::vector<Experience> experiences) {
  // Experiences are few and written when a character is created or updated: done inline.
  std::vector<MemoryRecord> records;
  for (Experience& x : experiences) {
    MemoryRecord r;
    r.tenant = tenant;
    r.scope = MemoryScope::kCharacter;
    r.character_id = character_id;
    r.turn_index = -1;
    r.text = std::move(x.text);
    TROUPE_ASSIGN_OR_RETURN(r.embedding, embedder_->Embed(r.text));
    if (x.emotion) {
      r.emotion = *x.emotion;
    } else if (rater_ != nullptr) {
      TROUPE_ASSIGN_OR_RETURN(r.emotion, rater_->RateEmotion(r.text));
    } else {
      r.emotion = kNeutralEmotion;
    }
    r.importance = kDefaultImportance;
    r.wall_time_ms = NowMs();
    r.story_time = x.story_time;
    records.push_back(std::move(r));
  }
  TROUPE_RETURN_IF_ERROR(store_->ReplaceCharacterMemories(tenant, character_id, records));
  {
    absl::MutexLock lock(&mu_);
    auto it = indexes_.find(CharacterKey(tenant, character_id));
    if (it != indexes_.end()) {
      for (MemoryId id : it->second.ids()) entries_.erase(id);
      indexes_.erase(it);
    }
  }
  TROUPE_ASSIGN_OR_RETURN(std::vector<MemoryRecord> stored, store_->ListCharacterMemories(tenant, character_id));
  for (const MemoryRecord& r : stored) TROUPE_RETURN_IF_ERROR(AddToIndex(r));
  return absl::OkStatus();
}

void MemoryService::Flush() { Flush(absl::InfiniteDuration()); }

bool MemoryService::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&queue_mu_);
  const int64_t target = queued_;
  while (done_ < target && !done_cv_.WaitWithDeadline(&queue_mu_, deadline)) {
  }
  if (done_ < target) return false;
  // Then the ratings of what was written, the ones those writes queued included.
  const int64_t rated = ratings_queued_;
  while (ratings_done_ < rated && !done_cv_.WaitWithDeadline(&queue_mu_, deadline)) {
  }
  return ratings_done_ >= rated;
}

void MemoryService::FlushWrites() {
  absl::MutexLock lock(&queue_mu_);
  const int64_t target = queued_;
  while (done_ < target) done_cv_.Wait(&queue_mu_);
}

int64_t MemoryService::DropQueued() {
  absl::MutexLock lock(&queue_mu_);
  const int64_t dropped = static_cast<int64_t>(queue_.size());
  for (const Job& job : queue_) {
    if (job.backfill) backfilling_ = false;
    if (job.turn) FinishedWrite(job.turn->keys.session_id, job.turn->turn_index);
  }
  queue_.clear();
  done_ += dropped;
  // Dropped ratings stay provisional in the store; the next start's Load queues them again.
  const int64_t unrated = static_cast<int64_t>(ratings_.size());
  ratings_.clear();
  ratings_done_ += unrated;
  done_cv_.SignalAll();
  return dropped + unrated;
}

int64_t MemoryService::num_pending_writes() const {
  absl::MutexLock lock(&queue_mu_);
  return queued_ - done_;
}

int64_t MemoryService::num_pending_ratings() const {
  absl::MutexLock lock(&queue_mu_);
  return ratings_queued_ - ratings_done_;
}

absl::Duration MemoryService::oldest_pending_rating_age() const {
  absl::MutexLock lock(&queue_mu_);
  std::optional<absl::Time> oldest = rating_since_;
  if (!ratings_.empty() && (!oldest || ratings_.front().queued_at < *oldest)) oldest = ratings_.front().queued_at;
  return oldest ? std::max(absl::ZeroDuration(), absl::Now() - *oldest) : absl::ZeroDuration();
}

void MemoryService::RaterLoop() {
  for (;;) {
    std::vector<RatingJob> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      const absl::Condition work(
          +[](MemoryService* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->queue_mu_) {
            return s->stopping_ || !s->ratings_.empty();
          },
          this);
      queue_mu_.Await(work);
      if (stopping_) return;  // the rest stay provisional in the store, for the next Load
      while (!ratings_.empty() && static_cast<int>(batch.size()) < options_.rating_batch) {
        batch.push_back(std::move(ratings_.front()));
        ratings_.pop_front();
      }
      rating_since_ = batch.front().queued_at;
    }
    // One round of the engine for the whole batch, then each memory in turn order.
    std::vector<MemoryRater::RatingInput> inputs;
    for (const RatingJob& job : batch) inputs.push_back({.text = job.text, .emotion = job.emotion});
    std::vector<absl::StatusOr<MemoryRater::Rating>> ratings = rater_->RateAll(inputs);
    for (size_t i = 0; i < batch.size(); ++i) {
      const absl::Status applied = i < ratings.size() ? Apply(batch[i], ratings[i]) : absl::InternalError("no rating");
      if (!applied.ok()) {
        TROUPE_LOG_WARNING("memory %lld keeps its provisional rating: %s", static_cast<long long>(batch[i].id),
                           applied.ToString().c_str());
      }
    }
    absl::MutexLock lock(&queue_mu_);
    rating_since_.reset();
    ratings_done_ += static_cast<int64_t>(batch.size());
    done_cv_.SignalAll();
  }
}

absl::Status MemoryService::Apply(const RatingJob& job, const absl::StatusOr<MemoryRater::Rating>& rating) {
  TROUPE_RETURN_IF_ERROR(rating.status());
  TROUPE_RETURN_IF_ERROR(ValidateEmotion(rating->emotion));
  if (!(std::isfinite(rating->importance) && rating->importance >= kImportanceMin &&
        rating->importance <= kImportanceMax)) {
    return absl::InvalidArgumentError(absl::StrCat("importance ", rating->importance, " is outside 1..10"));
  }
  const absl::Status stored = store_->UpdateMemoryRating(job.tenant, job.id, rating->emotion, rating->importance);
  // Gone (its session was deleted meanwhile) or rated already (by another replica that loaded
  // it too): nothing more to do here.
  if (absl::IsNotFound(stored)) return absl::OkStatus();
  TROUPE_RETURN_IF_ERROR(stored);
  {
    absl::MutexLock lock(&mu_);
    const auto entry = entries_.find(job.id);
    if (entry != entries_.end()) {
      const auto index = indexes_.find(entry->second.index_key);
      if (index != indexes_.end()) {
        TROUPE_RETURN_IF_ERROR(index->second.SetRating(job.id, rating->emotion, rating->importance));
      }
    }
  }
  if (job.session_id.empty()) return absl::OkStatus();
  const absl::Status moved = MoveMood(job.tenant, job.session_id, rating->emotion);
  return absl::IsNotFound(moved) ? absl::OkStatus() : moved;
}

absl::Status MemoryService::MoveMood(const std::string& tenant, const std::string& session_id,
                                     const EmotionVector& emotion) {
  TROUPE_ASSIGN_OR_RETURN(const SessionRecord session, store_->GetSession(tenant, session_id));
  const EmotionVector mood = UpdateMood(session.mood, emotion, options_.mood_beta);
  TROUPE_RETURN_IF_ERROR(store_->UpdateSessionMood(tenant, session_id, mood));
  if (on_mood_) on_mood_(session_id, mood);
  return absl::OkStatus();
}

int64_t MemoryService::num_memories() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

void MemoryService::AdvanceLowWater(int64_t now_ms) {
  // Longer than any troupe transaction can stay open (statements time out after 30 s), with
  // room for clock skew between replicas.
  constexpr int64_t kSettledMs = 60'000;
  while (!seen_above_.empty()) {
    const auto first = seen_above_.begin();
    if (first->first != low_water_ + 1 && first->second > now_ms - kSettledMs) break;
    low_water_ = first->first;
    seen_above_.erase(first);
  }
}

void MemoryService::CatchUp() {
  constexpr int kBatch = 1000;
  int64_t after = low_water_;
  for (;;) {
    absl::StatusOr<std::vector<MemoryRecord>> batch = store_->ListMemoriesAfter(after, kBatch);
    if (!batch.ok()) {
      TROUPE_LOG_WARNING("memory: cannot read other replicas' memories (%s); retrying later",
                         batch.status().ToString().c_str());
      return;
    }
    for (const MemoryRecord& r : *batch) {
      after = r.id;
      seen_above_.emplace(r.id, r.wall_time_ms);
      if (r.turn_index >= 0) remembered_turns_.emplace(r.session_id, r.turn_index);
      bool indexed;
      {
        absl::ReaderMutexLock lock(&mu_);
        indexed = entries_.count(r.id) != 0;
      }
      if (indexed || static_cast<int>(r.embedding.size()) != embedder_->dim()) continue;
      if (const absl::Status added = AddToIndex(r); !added.ok()) {
        TROUPE_LOG_WARNING("memory %lld not indexed: %s", static_cast<long long>(r.id), added.ToString().c_str());
      }
    }
    if (static_cast<int>(batch->size()) < kBatch) break;
  }
  AdvanceLowWater(NowMs());
}

void MemoryService::WriterLoop() {
  for (;;) {
    // On a shared Store: learn what other replicas stored, every catch_up_interval, whether or
    // not writes keep coming (without the queue's lock).
    if (store_->shared() && absl::Now() >= next_catch_up_) {
      CatchUp();
      next_catch_up_ = absl::Now() + options_.catch_up_interval;
    }
    Job job;
    {
      absl::MutexLock lock(&queue_mu_);
      const absl::Condition work(
          +[](MemoryService* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->queue_mu_) {
            return s->stopping_ || !s->queue_.empty();
          },
          this);
      if (store_->shared()) {
        if (!queue_mu_.AwaitWithDeadline(work, next_catch_up_)) continue;  // time to catch up
      } else {
        queue_mu_.Await(work);
      }
      if (queue_.empty()) return;  // stopping, and every queued write done
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (job.turn) {
      const absl::Status written = WriteTurn(*job.turn);
      if (!written.ok()) {
        TROUPE_LOG_WARNING("memory of session %s turn %d not written: %s",
                           job.turn->keys.session_id.c_str(), job.turn->turn_index,
                           written.ToString().c_str());
      }
      absl::MutexLock lock(&queue_mu_);
      FinishedWrite(job.turn->keys.session_id, job.turn->turn_index);
      done_cv_.SignalAll();
    }
    if (job.experiences) {
      CharacterExperiences& x = *job.experiences;
      const absl::Status set = SetCharacterExperiences(x.tenant, x.character_id, std::move(x.experiences));
      if (!set.ok()) {
        TROUPE_LOG_WARNING("experiences of character %s not indexed: %s", x.character_id.c_str(),
                           set.ToString().c_str());
      }
    }
    std::optional<BackfillCursor> next_batch;
    if (job.backfill) {
      bool stopping;
      {
        absl::MutexLock lock(&queue_mu_);
        stopping = stopping_;
      }
      if (!stopping) {
        absl::StatusOr<std::optional<BackfillCursor>> batch = BackfillBatch(*job.backfill);
        if (batch.ok()) {
          next_batch = *std::move(batch);
        } else {
          TROUPE_LOG_WARNING("memory backfill stopped (%s); the turns left are tried at the next start",
                             batch.status().ToString().c_str());
        }
      }
    }
    absl::MutexLock lock(&queue_mu_);
    if (next_batch && !stopping_) {
      // Behind the writes queued meanwhile: clients' turns wait for one batch at most.
      queue_.push_back(Job{.turn = std::nullopt, .experiences = std::nullopt, .backfill = std::move(next_batch)});
      ++queued_;
    } else if (job.backfill) {
      backfilling_ = false;
    }
    ++done_;
    done_cv_.SignalAll();
  }
}

absl::Status MemoryService::WriteTurn(const TurnMemoryInput& turn) {
  if (remembered_turns_.contains({turn.keys.session_id, turn.turn_index})) return absl::OkStatus();
  const std::string& tenant = turn.keys.tenant;
  MemoryRecord r;
  r.tenant = tenant;
  r.scope = turn.keys.user_id.empty() ? MemoryScope::kSession : MemoryScope::kUserCharacter;
  r.character_id = turn.keys.character_id;
  r.user_id = turn.keys.user_id;
  r.session_id = turn.keys.session_id;
  r.turn_index = turn.turn_index;
  const std::string user = turn.user_name.empty() ? "User" : turn.user_name;
  const std::string character = turn.character_name.empty() ? "Character" : turn.character_name;
  r.text = absl::StrCat(user, ": ", turn.user_text, "\n", character, ": ", turn.reply_text);
  TROUPE_ASSIGN_OR_RETURN(r.embedding, embedder_->Embed(r.text));
  // Stored now, rated later (RaterLoop): until then the emotion is the caller's or the
  // session's running mood, and the importance the default.
  const bool rate_later = rater_ != nullptr;
  if (turn.emotion) {
    r.emotion = *turn.emotion;
  } else if (rate_later) {
    const absl::StatusOr<SessionRecord> session = store_->GetSession(tenant, turn.keys.session_id);
    if (!session.ok() && !absl::IsNotFound(session.status())) return session.status();
    r.emotion = session.ok() ? session->mood : kNeutralEmotion;  // a deleted session keeps wider memories
  } else {
    r.emotion = kNeutralEmotion;
  }
  r.importance = kDefaultImportance;
  r.rated = !rate_later;
  r.wall_time_ms = NowMs();
  r.story_time = turn.story_time;
  absl::StatusOr<int64_t> added = store_->AddMemory(tenant, r);
  if (absl::IsAlreadyExists(added.status())) {
    // Another replica remembered this turn first (a shared store): it indexed it, moved the
    // mood, and CatchUp brings the memory here.
    remembered_turns_.emplace(r.session_id, r.turn_index);
    return absl::OkStatus();
  }
  TROUPE_RETURN_IF_ERROR(added.status());
  r.id = *added;
  remembered_turns_.emplace(r.session_id, r.turn_index);
  TROUPE_RETURN_IF_ERROR(AddToIndex(r));
  if (rate_later) {
    QueueRating(RatingJob{.tenant = tenant, .id = r.id, .session_id = r.session_id, .text = r.text,
                          .emotion = turn.emotion, .queued_at = absl::Now()});
    return absl::OkStatus();
  }
  // One thread moves this session's mood (this one without a rater, the rater's with one), in
  // turn order, so the stored mood is current (with replicas: the replica that first remembered
  // the turn; turns of one session run on one replica at a time, routed by session id).
  return MoveMood(tenant, turn.keys.session_id, r.emotion);
}

}  // namespace troupe
