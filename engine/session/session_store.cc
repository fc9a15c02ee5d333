#include "engine/session/session_store.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace troupe {

SessionId NewSessionId() {
  // std::random_device reads the kernel's CSPRNG on Linux, so ids are not guessable.
  std::random_device device;
  std::string id;
  id.reserve(32);
  for (int i = 0; i < 4; ++i) {
    absl::StrAppendFormat(&id, "%08x", static_cast<uint32_t>(device()));
  }
  return id;
}

SessionStore::SessionStore(const SessionStoreOptions& options) : options_(options) {}

absl::StatusOr<Session> SessionStore::Create(Character character) {
  if (character.name.empty()) character.name = "Assistant";
  Session session;
  session.character = std::move(character);
  session.create_time = absl::Now();
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(sessions_.size()) >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many sessions (limit ", options_.max_sessions, "); delete unused ones"));
  }
  do {
    session.id = NewSessionId();
  } while (sessions_.count(session.id) != 0);
  sessions_.emplace(session.id, session);
  return session;
}

absl::StatusOr<Session> SessionStore::Get(const SessionId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
  return it->second;
}

absl::Status SessionStore::Delete(const SessionId& id) {
  absl::MutexLock lock(&mu_);
  if (sessions_.erase(id) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown session '", id, "'"));
  }
  return absl::OkStatus();
}

absl::Status SessionStore::AppendTurn(const SessionId& id, size_t base_version,
                                      std::string user_message, std::string reply,
                                      std::vector<TokenId> context_tokens) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session '", id, "' was deleted during the turn"));
  }
  std::vector<ChatMessage>& history = it->second.history;
  if (history.size() != base_version) {
    return absl::AbortedError(absl::StrCat(
        "session '", id, "' changed during the turn (another turn finished first); retry"));
  }
  if (static_cast<int>(history.size()) + 2 > options_.max_history_messages) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session history is full (", options_.max_history_messages, " messages)"));
  }
  history.push_back(ChatMessage{"user", std::move(user_message)});
  history.push_back(ChatMessage{"assistant", std::move(reply)});
  it->second.context_tokens = std::move(context_tokens);
  return absl::OkStatus();
}

int SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size());
}

}  // namespace troupe
