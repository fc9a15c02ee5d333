// In-memory role-play sessions: a character and the chat history. Used by the server's gRPC
// reactions, its prompt-preparation workers and the engine thread (which appends a finished turn).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace troupe {

using SessionId = std::string;  // 32 lowercase hex digits (128 random bits)

// Minimal character; the full profile (persona, style, examples) extends this later.
struct Character {
  std::string name;           // speaker name in raw transcripts; never empty once stored
  std::string system_prompt;  // may be empty
};

// A snapshot of one session. `history` holds user/assistant messages, oldest first; its size is
// the session's version (it only grows, by two messages per turn).
struct Session {
  SessionId id;
  Character character;
  std::vector<ChatMessage> history;
  absl::Time create_time;
  // The token ids the last turn ran on (its prompt, then its reply as generated), when that
  // reply ended with the model's end of turn or at max_tokens; empty after a stop string. The next turn's prompt is these
  // tokens plus the continuation (BuildChatContinuation), so every turn's prompt extends the
  // previous one token for token and the prefix cache serves the whole history.
  std::vector<TokenId> context_tokens;
};

struct SessionStoreOptions {
  int max_sessions = 10000;          // Create fails with kResourceExhausted past this
  int max_history_messages = 4096;   // AppendTurn fails with kResourceExhausted past this
};

// Owns all sessions. Thread-safe: every method takes mu_ briefly and never calls out while
// holding it; Get returns a copy so callers can render prompts without the lock.
class SessionStore {
 public:
  explicit SessionStore(const SessionStoreOptions& options = {});
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Creates a session with an empty history. An empty name becomes "Assistant".
  // kResourceExhausted when max_sessions sessions exist.
  [[nodiscard]] absl::StatusOr<Session> Create(Character character) ABSL_LOCKS_EXCLUDED(mu_);

  // A copy of the session. kNotFound for an unknown id.
  [[nodiscard]] absl::StatusOr<Session> Get(const SessionId& id) const ABSL_LOCKS_EXCLUDED(mu_);

  // kNotFound for an unknown id.
  [[nodiscard]] absl::Status Delete(const SessionId& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Appends one turn (the user's message, then the reply). `base_version` is the history size
  // of the snapshot the turn was rendered from: if another turn landed in between, the turn is
  // refused with kAborted so the history never interleaves two turns. kNotFound if the session
  // was deleted meanwhile; kResourceExhausted past max_history_messages.
  // `context_tokens` replaces Session::context_tokens (empty: the next turn renders in full).
  [[nodiscard]] absl::Status AppendTurn(const SessionId& id, size_t base_version,
                                        std::string user_message, std::string reply,
                                        std::vector<TokenId> context_tokens = {})
      ABSL_LOCKS_EXCLUDED(mu_);

  int size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Constant after construction.
  const SessionStoreOptions options_;

  mutable absl::Mutex mu_;
  std::unordered_map<SessionId, Session> sessions_ ABSL_GUARDED_BY(mu_);
};

// 32 lowercase hex digits from the OS's random source (std::random_device). Thread-safe.
SessionId NewSessionId();

}  // namespace troupe
