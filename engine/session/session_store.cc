#include "engine/session/session_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/ids.h"
#include "common/json_depth.h"
#include "common/status_macros.h"
#include "engine/character/character_card.h"
#include "nlohmann/json.hpp"

namespace troupe {
namespace {

// A session's greeting: turns start with a user message, so an assistant message first is it.
std::string GreetingOf(const Session& s) {
  return !s.history.empty() && s.history.front().role == "assistant" ? s.history.front().content : std::string();
}

// A stored setup holds a few capped texts (persona and scenario 64 KiB each, names 256 bytes),
// the greeting (a card text, 256 KiB) and the running summary: 4 MiB is far above any real one.
constexpr size_t kMaxStoredSetupJsonBytes = 4 << 20;

}  // namespace

std::string SessionSetupToJson(const SessionSetup& setup, const SessionExtras& extras) {
  nlohmann::json j;
  j["user_name"] = setup.user_name;
  j["user_persona"] = setup.user_persona;
  j["scenario"] = setup.scenario;
  if (setup.point_in_time) {
    j["point_in_time"] = {{"ordinal", setup.point_in_time->ordinal}, {"label", setup.point_in_time->label}};
  }
  j["initial_mood"] = setup.initial_mood;
  j["greeting_index"] = setup.greeting_index;
  j["user_id"] = setup.user_id;
  j["greeting"] = extras.greeting;
  if (extras.summarized_turns > 0) {
    j["summary"] = extras.summary;
    j["summarized_turns"] = extras.summarized_turns;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status SessionSetupFromJson(const std::string& json, SessionSetup* setup, SessionExtras* extras) {
  // Written by SessionSetupToJson from capped fields (server/limits.h): a record larger or
  // deeper than that could ever be was not written by troupe.
  if (json.size() > kMaxStoredSetupJsonBytes || !JsonWithinDepth(json)) {
    return absl::DataLossError(absl::StrCat("stored session setup: ", json.size(),
                                            " bytes or nesting over the limits; not written by troupe"));
  }
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored session setup is not a JSON object");
  try {
    setup->user_name = j.value("user_name", "User");
    setup->user_persona = j.value("user_persona", "");
    setup->scenario = j.value("scenario", "");
    if (j.contains("point_in_time")) {
      setup->point_in_time = StoryTime{j["point_in_time"].value("ordinal", int64_t{0}),
                                       j["point_in_time"].value("label", "")};
    }
    if (j.contains("initial_mood")) setup->initial_mood = j["initial_mood"].get<EmotionVector>();
    setup->greeting_index = j.value("greeting_index", 0);
    setup->user_id = j.value("user_id", "");
    extras->greeting = j.value("greeting", "");
    extras->summary = j.value("summary", "");
    extras->summarized_turns = j.value("summarized_turns", 0);
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("stored session setup: ", e.what()));
  }
  return absl::OkStatus();
}

SessionStore::SessionStore(const SessionStoreOptions& options, Store* store)
    : options_(options), store_(store) {}

absl::StatusOr<Session> SessionStore::Create(const std::string& tenant, Character character) {
  if (character.name.empty()) character.name = "Assistant";
  Session session;
  session.tenant = tenant;
  session.character = std::move(character);
  session.create_time = absl::Now();
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  // A sweep at most every minute (or ttl), and whenever the cap is reached, so that idle
  // sessions nobody asks for again do not hold the cap.
  const bool at_cap = static_cast<int>(inline_last_use_.size()) >= options_.max_inline_sessions;
  if (at_cap || now >= next_sweep_) ExpireIdleLocked(now);
  if (static_cast<int>(inline_last_use_.size()) >= options_.max_inline_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many inline sessions (limit ", options_.max_inline_sessions, "); delete unused ones"));
  }
  do {
    session.id = NewRandomId();
  } while (sessions_.count(session.id) != 0);
  sessions_.emplace(session.id, session);
  inline_last_use_.emplace(session.id, now);
  return session;
}

absl::StatusOr<Session> SessionStore::CreateDurable(const std::string& tenant, const std::string& character_id,
                                                    const std::string& character_name,
                                                    const SessionSetup& setup, const std::string& greeting) {
  TROUPE_CHECK(store_ != nullptr);
  Session session;
  session.tenant = tenant;
  session.character.name = character_name;
  session.character_id = character_id;
  session.setup = setup;
  session.mood = setup.initial_mood;
  session.create_time = absl::Now();
  if (!greeting.empty()) session.history.push_back(ChatMessage{"assistant", greeting});
  {
    absl::MutexLock lock(&mu_);
    const int durable = static_cast<int>(sessions_.size() - inline_last_use_.size()) + durable_creating_;
    if (durable >= options_.max_sessions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "too many sessions in memory (limit ", options_.max_sessions, ")"));
    }
    do {
      session.id = NewRandomId();
    } while (sessions_.count(session.id) != 0);
    ++durable_creating_;  // holds its place under the cap while the write runs without mu_
  }
  SessionRecord record;
  record.id = session.id;
  record.character_id = character_id;
  record.user_id = setup.user_id;
  SessionExtras extras;
  extras.greeting = greeting;
  record.setup_json = SessionSetupToJson(setup, extras);
  record.mood = session.mood;
  record.create_time_ms = absl::ToUnixMillis(session.create_time);
  const absl::Status created = store_->CreateSession(tenant, record);
  absl::MutexLock lock(&mu_);
  --durable_creating_;
  TROUPE_RETURN_IF_ERROR(created);
  sessions_.emplace(session.id, session);
  return session;
}

absl::StatusOr<Session> SessionStore::Load(const std::string& tenant, const SessionId& id) const {
  TROUPE_ASSIGN_OR_RETURN(const SessionRecord record, store_->GetSession(tenant, id));
  TROUPE_ASSIGN_OR_RETURN(const std::vector<TurnRecord> turns, store_->ListTurns(tenant, id));
  TROUPE_ASSIGN_OR_RETURN(const CharacterRecord character, store_->GetCharacter(tenant, record.character_id));
  Session session;
  session.tenant = tenant;
  session.id = id;
  session.character_id = record.character_id;
  SessionExtras extras;
  TROUPE_RETURN_IF_ERROR(SessionSetupFromJson(record.setup_json, &session.setup, &extras));
  const std::string& greeting = extras.greeting;
  session.summary = extras.summary;
  session.summarized_turns = extras.summarized_turns;
  // The character's name, from its stored card (checked like a card from a client).
  if (character.card_json.size() <= kMaxCardBytes && JsonWithinDepth(character.card_json, kMaxCardJsonDepth)) {
    const nlohmann::json card = nlohmann::json::parse(character.card_json, nullptr, false);
    if (card.is_object() && card.contains("data") && card["data"].is_object()) {
      session.character.name = card["data"].value("name", "");
    }
  }
  session.mood = record.mood;
  session.create_time = absl::FromUnixMillis(record.create_time_ms);
  if (!greeting.empty()) session.history.push_back(ChatMessage{"assistant", greeting});
  for (const TurnRecord& t : turns) {
    session.history.push_back(ChatMessage{"user", t.user_text});
    if (!t.context_text.empty()) session.history.push_back(ChatMessage{"system", t.context_text});
    session.history.push_back(ChatMessage{"assistant", t.reply_text});
  }
  session.num_turns = static_cast<int>(turns.size());
  session.store_version = record.version;
  return session;  // no context_tokens: the first turn after loading renders in full
}

absl::StatusOr<Session> SessionStore::Get(const std::string& tenant, const SessionId& id) const {
  if (store_ != nullptr && store_->shared()) {
    absl::StatusOr<std::optional<Session>> current = GetIfCurrent(tenant, id);
    if (!current.ok() || current->has_value()) {
      if (!current.ok()) return current.status();
      return **current;
    }
  }
  uint64_t deletions_before_load = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      if (it->second.tenant != tenant) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
      if (auto last_use = inline_last_use_.find(id); last_use != inline_last_use_.end()) {
        const absl::Time now = Now();
        if (ExpiredLocked(id, now)) {
          sessions_.erase(it);
          inline_last_use_.erase(last_use);
          return absl::NotFoundError(absl::StrCat("unknown session '", id, "' (inline sessions expire after ",
                                                  absl::FormatDuration(options_.inline_idle_ttl), " unused)"));
        }
        last_use->second = now;
      }
      return it->second;
    }
    if (store_ == nullptr) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    deletions_before_load = deletions_;
  }
  absl::StatusOr<Session> loaded = Load(tenant, id);
  if (!loaded.ok()) {
    if (absl::IsNotFound(loaded.status())) {
      return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    }
    return loaded.status();
  }
  absl::MutexLock lock(&mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    // Loaded by another call meanwhile (and perhaps given a turn since): that copy is current.
    if (it->second.tenant != tenant) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    return it->second;
  }
  if (deletions_ == deletions_before_load) sessions_.emplace(id, *loaded);
  return loaded;
}

absl::StatusOr<std::optional<Session>> SessionStore::GetIfCurrent(const std::string& tenant,
                                                                  const SessionId& id) const {
  int64_t held_version = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.character_id.empty()) return std::nullopt;  // not held, or inline
    if (it->second.tenant != tenant) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    held_version = it->second.store_version;
  }
  absl::StatusOr<SessionRecord> stored = store_->GetSession(tenant, id);
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (!stored.ok()) {
    if (!absl::IsNotFound(stored.status())) return stored.status();
    // Deleted by another replica: forget it here too.
    if (it != sessions_.end() && it->second.store_version == held_version) sessions_.erase(it);
    return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
  }
  if (it == sessions_.end()) return std::nullopt;  // dropped meanwhile: load it
  if (it->second.store_version != stored->version) {
    // Another replica gave it a turn or a new setup: drop this copy unless a turn of this
    // process moved it meanwhile, and load afresh.
    if (it->second.store_version == held_version) sessions_.erase(it);
    return std::nullopt;
  }
  it->second.mood = stored->mood;  // the memory writer of whichever replica ran the last turn
  return it->second;
}

std::shared_ptr<absl::Mutex> SessionStore::WriteMutexLocked(const SessionId& id) {
  std::shared_ptr<absl::Mutex>& mutex = write_mutexes_[id];
  if (mutex == nullptr) mutex = std::make_shared<absl::Mutex>();
  return mutex;
}

absl::StatusOr<std::vector<Session>> SessionStore::ListDurable(const std::string& tenant,
                                                              const std::string& character_id,
                                                              const std::string& after_id, int limit) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("this server keeps no durable sessions (no data directory)");
  }
  TROUPE_ASSIGN_OR_RETURN(const std::vector<SessionRecord> records,
                          store_->ListSessions(tenant, character_id, {.after_id = after_id, .limit = limit}));
  std::vector<Session> out;
  for (const SessionRecord& r : records) {
    Session s;
    s.tenant = tenant;
    s.id = r.id;
    s.character_id = r.character_id;
    SessionExtras extras;
    TROUPE_RETURN_IF_ERROR(SessionSetupFromJson(r.setup_json, &s.setup, &extras));
    s.summary = extras.summary;
    s.summarized_turns = extras.summarized_turns;
    s.mood = r.mood;
    s.create_time = absl::FromUnixMillis(r.create_time_ms);
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status SessionStore::SetSummary(const SessionId& id, std::string summary, int summarized_turns) {
  std::shared_ptr<absl::Mutex> write_mutex;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    if (it->second.character_id.empty()) {  // inline: memory only
      it->second.summary = std::move(summary);
      it->second.summarized_turns = summarized_turns;
      it->second.pending_summary.reset();
      return absl::OkStatus();
    }
    write_mutex = WriteMutexLocked(id);
  }
  absl::MutexLock write(write_mutex.get());
  std::string tenant;
  std::string setup_json;
  int64_t held_version = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
    const Session& s = it->second;
    tenant = s.tenant;
    held_version = s.store_version;
    setup_json = SessionSetupToJson(s.setup, {.greeting = GreetingOf(s), .summary = summary,
                                              .summarized_turns = summarized_turns});
  }
  TROUPE_RETURN_IF_ERROR(store_->UpdateSessionSetup(tenant, id, setup_json));
  absl::MutexLock lock(&mu_);
  // Delete takes the write mutex first; only a Get on a shared Store may have replaced the copy
  // meanwhile (then the next Get loads what the Store holds, this summary included).
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    if (it->second.store_version != held_version) {
      sessions_.erase(it);
    } else {
      it->second.summary = std::move(summary);
      it->second.summarized_turns = summarized_turns;
      it->second.pending_summary.reset();
      ++it->second.store_version;  // UpdateSessionSetup bumped it
    }
  }
  return absl::OkStatus();
}

bool SessionStore::ClaimPendingSummary(const SessionId& id, int from_turn, int to_turn) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  Session& session = it->second;
  if (session.summarized_turns != from_turn || to_turn <= from_turn || to_turn > session.num_turns) return false;
  if (session.pending_summary && session.pending_summary->from_turn == from_turn) return false;
  session.pending_summary = PendingSummary{.from_turn = from_turn, .to_turn = to_turn, .summary = std::nullopt};
  return true;
}

void SessionStore::SetPendingSummary(const SessionId& id, int from_turn, std::optional<std::string> summary) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  std::optional<PendingSummary>& pending = it->second.pending_summary;
  if (!pending || pending->from_turn != from_turn || it->second.summarized_turns != from_turn) return;
  if (summary) {
    pending->summary = std::move(summary);
  } else {
    pending.reset();
  }
}

void SessionStore::SetMood(const SessionId& id, const EmotionVector& mood) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) it->second.mood = mood;
}

absl::Status SessionStore::Delete(const std::string& tenant, const SessionId& id) {
  const absl::Status unknown = absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
  std::shared_ptr<absl::Mutex> write_mutex;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second.tenant != tenant) return unknown;  // left alone
    if (it != sessions_.end() && it->second.character_id.empty()) {  // inline: memory only
      sessions_.erase(it);
      inline_last_use_.erase(id);
      return absl::OkStatus();
    }
    if (store_ == nullptr) return unknown;
    write_mutex = WriteMutexLocked(id);
  }
  // After any write of this session in flight; the row goes first, then the cached copy, so a
  // Get that loads meanwhile either finds no row or sees deletions_ move (and caches nothing).
  absl::MutexLock write(write_mutex.get());
  const absl::Status deleted = store_->DeleteSession(tenant, id);
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  const bool cached = it != sessions_.end() && it->second.tenant == tenant;
  const bool gone = deleted.ok() || absl::IsNotFound(deleted);
  // Kept only while the session stays (the Store failed): no id a client makes up stays here.
  if (gone || !cached) write_mutexes_.erase(id);
  if (deleted.ok() || (cached && gone)) {
    if (cached) sessions_.erase(it);
    ++deletions_;
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(deleted)) return deleted;
  return unknown;
}

absl::Status SessionStore::CheckAppendLocked(const SessionId& id, size_t base_version, const Turn& turn,
                                             Session** session) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    // On a shared Store a copy is also dropped when another replica changed the session.
    if (store_ != nullptr && store_->shared()) {
      return absl::AbortedError(absl::StrCat("session '", id, "' changed or was deleted elsewhere during the turn; retry"));
    }
    return absl::NotFoundError(absl::StrCat("session '", id, "' was deleted during the turn"));
  }
  const std::vector<ChatMessage>& history = it->second.history;
  if (history.size() != base_version) {
    return absl::AbortedError(absl::StrCat(
        "session '", id, "' changed during the turn (another turn finished first); retry"));
  }
  const int added = turn.context.empty() ? 2 : 3;
  if (static_cast<int>(history.size()) + added > options_.max_history_messages) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session history is full (", options_.max_history_messages, " messages)"));
  }
  *session = &it->second;
  return absl::OkStatus();
}

void SessionStore::ApplyTurnLocked(const SessionId& id, Session& session, Turn turn) {
  std::vector<ChatMessage>& history = session.history;
  history.push_back(ChatMessage{"user", std::move(turn.user_message)});
  if (!turn.context.empty()) history.push_back(ChatMessage{"system", std::move(turn.context)});
  history.push_back(ChatMessage{"assistant", std::move(turn.reply)});
  session.context_tokens = std::move(turn.context_tokens);
  session.character_version = turn.character_version;
  if (turn.rendered_in_full) session.contexts_from_turn = session.num_turns;
  if (turn.new_summary) {
    session.summary = *std::move(turn.new_summary);
    session.summarized_turns = turn.new_summarized_turns;
    session.pending_summary.reset();
  }
  ++session.num_turns;
  ++session.store_version;  // the Store's AppendTurn bumped it (durable sessions)
  if (auto last_use = inline_last_use_.find(id); last_use != inline_last_use_.end()) last_use->second = Now();
}

absl::Status SessionStore::AppendTurn(const SessionId& id, size_t base_version, Turn turn) {
  std::shared_ptr<absl::Mutex> write_mutex;
  {
    absl::MutexLock lock(&mu_);
    Session* session = nullptr;
    TROUPE_RETURN_IF_ERROR(CheckAppendLocked(id, base_version, turn, &session));
    if (session->character_id.empty()) {  // inline: memory only
      ApplyTurnLocked(id, *session, std::move(turn));
      return absl::OkStatus();
    }
    write_mutex = WriteMutexLocked(id);
  }
  // A durable turn is committed to the Store before the client sees the end of the turn, under
  // the session's write mutex only: other sessions' turns and every inline call go on meanwhile.
  absl::MutexLock write(write_mutex.get());
  TurnRecord record;
  std::string tenant;
  int64_t held_version = 0;
  {
    absl::MutexLock lock(&mu_);
    Session* session = nullptr;  // checked again: a turn of this session may have landed meanwhile
    TROUPE_RETURN_IF_ERROR(CheckAppendLocked(id, base_version, turn, &session));
    tenant = session->tenant;
    held_version = session->store_version;
    record.session_id = id;
    record.turn_index = session->num_turns;
    record.user_text = turn.user_message;
    record.context_text = turn.context;
    record.reply_text = turn.reply;
    record.time_ms = absl::ToUnixMillis(absl::Now());
    if (turn.new_summary) {
      record.setup_json = SessionSetupToJson(
          session->setup, {.greeting = GreetingOf(*session), .summary = *turn.new_summary,
                           .summarized_turns = turn.new_summarized_turns});
    }
  }
  if (absl::Status appended = store_->AppendTurn(tenant, record); !appended.ok()) {
    if (!absl::IsAborted(appended)) return appended;
    // Another replica committed this turn index first, or the database had a conflict (a
    // shared Store): this copy may be stale.
    absl::MutexLock lock(&mu_);
    if (auto it = sessions_.find(id); it != sessions_.end() && it->second.store_version == held_version) {
      sessions_.erase(it);
    }
    return absl::AbortedError(absl::StrCat("session '", id, "' changed elsewhere during this turn (",
                                            appended.message(), "); retry"));
  }
  absl::MutexLock lock(&mu_);
  // Delete and every other write of this session take the write mutex, so the copy is the one
  // this turn was checked against unless, on a shared Store, a Get dropped it meanwhile (and
  // perhaps loaded it again, this turn included). Only that copy takes the turn; a newer one
  // is dropped so that the next Get loads what the Store holds. The turn is committed either way.
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return absl::OkStatus();
  if (it->second.store_version == held_version && it->second.history.size() == base_version) {
    ApplyTurnLocked(id, it->second, std::move(turn));
  } else {
    sessions_.erase(it);
  }
  return absl::OkStatus();
}

int SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size());
}

int SessionStore::num_inline() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(inline_last_use_.size());
}

bool SessionStore::ExpiredLocked(const SessionId& id, absl::Time now) const {
  if (options_.inline_idle_ttl <= absl::ZeroDuration()) return false;
  auto it = inline_last_use_.find(id);
  return it != inline_last_use_.end() && now - it->second >= options_.inline_idle_ttl;
}

void SessionStore::ExpireIdleLocked(absl::Time now) {
  if (options_.inline_idle_ttl <= absl::ZeroDuration()) return;
  for (auto it = inline_last_use_.begin(); it != inline_last_use_.end();) {
    if (now - it->second >= options_.inline_idle_ttl) {
      sessions_.erase(it->first);
      it = inline_last_use_.erase(it);
    } else {
      ++it;
    }
  }
  next_sweep_ = now + std::min(options_.inline_idle_ttl, absl::Minutes(1));
}

}  // namespace troupe
