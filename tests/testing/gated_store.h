// A Store that forwards every call to a real one (a SqliteStore on a temp file) and can hold
// one kind of call at a gate (writes, and the turns read of a session's load): tests that must know a write is in progress (what may run
// beside it, what must wait for it) control its timing with this, the disk stays real.
#pragma once

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/store/store.h"

namespace troupe::testing {

class GatedStore final : public Store {
 public:
  enum class Op { kNone, kCreateSession, kUpdateSessionSetup, kDeleteSession, kAppendTurn, kListTurns };

  explicit GatedStore(Store* inner) : inner_(inner) {}

  // The next call of `op` waits at the gate until Release(); calls before it, and later ones
  // of the same op, pass.
  void HoldNext(Op op) {
    absl::MutexLock lock(&mu_);
    held_op_ = op;
    holding_ = false;
    released_ = false;
  }
  // Waits until the held call has reached the gate (it has not touched the inner Store yet).
  void WaitUntilHeld() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&holding_));
  }
  // Lets the held call go on to the inner Store.
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }

  absl::Status PutCharacter(const std::string& tenant, const CharacterRecord& c) override {
    return inner_->PutCharacter(tenant, c);
  }
  absl::StatusOr<CharacterRecord> GetCharacter(const std::string& tenant, const std::string& id) override {
    return inner_->GetCharacter(tenant, id);
  }
  absl::StatusOr<std::vector<CharacterRecord>> ListCharacters(const std::string& tenant,
                                                              const PageRequest& page) override {
    return inner_->ListCharacters(tenant, page);
  }
  absl::Status DeleteCharacter(const std::string& tenant, const std::string& id) override {
    return inner_->DeleteCharacter(tenant, id);
  }
  absl::Status CreateSession(const std::string& tenant, const SessionRecord& session) override {
    Gate(Op::kCreateSession);
    return inner_->CreateSession(tenant, session);
  }
  absl::StatusOr<SessionRecord> GetSession(const std::string& tenant, const std::string& id) override {
    return inner_->GetSession(tenant, id);
  }
  absl::StatusOr<std::vector<SessionRecord>> ListSessions(const std::string& tenant,
                                                          const std::string& character_id,
                                                          const PageRequest& page) override {
    return inner_->ListSessions(tenant, character_id, page);
  }
  absl::StatusOr<std::vector<SessionRecord>> ListSessionsOfAllTenants(const PageRequest& page) override {
    return inner_->ListSessionsOfAllTenants(page);
  }
  absl::Status UpdateSessionSetup(const std::string& tenant, const std::string& id,
                                  const std::string& setup_json) override {
    Gate(Op::kUpdateSessionSetup);
    return inner_->UpdateSessionSetup(tenant, id, setup_json);
  }
  absl::Status DeleteSession(const std::string& tenant, const std::string& id) override {
    Gate(Op::kDeleteSession);
    return inner_->DeleteSession(tenant, id);
  }
  absl::Status AppendTurn(const std::string& tenant, const TurnRecord& turn) override {
    Gate(Op::kAppendTurn);
    return inner_->AppendTurn(tenant, turn);
  }
  absl::Status UpdateSessionMood(const std::string& tenant, const std::string& id,
                                 const std::array<float, 8>& mood) override {
    return inner_->UpdateSessionMood(tenant, id, mood);
  }
  absl::StatusOr<std::vector<TurnRecord>> ListTurns(const std::string& tenant,
                                                    const std::string& session_id) override {
    Gate(Op::kListTurns);
    return inner_->ListTurns(tenant, session_id);
  }
  absl::StatusOr<int64_t> AddMemory(const std::string& tenant, const MemoryRecord& memory) override {
    return inner_->AddMemory(tenant, memory);
  }
  absl::Status UpdateMemoryRating(const std::string& tenant, int64_t id, const std::array<float, 8>& emotion,
                                  float importance) override {
    return inner_->UpdateMemoryRating(tenant, id, emotion, importance);
  }
  absl::Status ReplaceCharacterMemories(const std::string& tenant, const std::string& character_id,
                                        const std::vector<MemoryRecord>& memories) override {
    return inner_->ReplaceCharacterMemories(tenant, character_id, memories);
  }
  absl::StatusOr<std::vector<MemoryRecord>> ListCharacterMemories(const std::string& tenant,
                                                                  const std::string& character_id) override {
    return inner_->ListCharacterMemories(tenant, character_id);
  }
  absl::StatusOr<std::vector<MemoryRecord>> ListMemories() override { return inner_->ListMemories(); }
  absl::StatusOr<std::vector<MemoryRecord>> ListSessionMemories(const std::string& tenant,
                                                                const std::string& session_id) override {
    return inner_->ListSessionMemories(tenant, session_id);
  }

 private:
  void Gate(Op op) {
    absl::MutexLock lock(&mu_);
    if (op != held_op_ || holding_) return;
    holding_ = true;
    mu_.Await(absl::Condition(&released_));
    held_op_ = Op::kNone;
  }

  Store* const inner_;
  absl::Mutex mu_;
  Op held_op_ ABSL_GUARDED_BY(mu_) = Op::kNone;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace troupe::testing
