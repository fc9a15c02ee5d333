// The session family of troupe.v1.RolePlay: CreateSession, GetSession, ListSessions,
// DeleteSession and Chat. Chat validates the request in the reaction, plans the turn on a
// preparation worker (turn_planner.h) and commits it when the reply finished OK
// (turn_commit.h). See docs/api.md for the RPC contracts.
#pragma once

#include <memory>

#include "engine/character/character_registry.h"
#include "engine/clients/summarizer.h"
#include "engine/engine.h"
#include "engine/memory/memory_service.h"
#include "engine/sampler/sampling_params.h"
#include "engine/session/character_prompt.h"
#include "engine/session/session_store.h"
#include "engine/session/turn_commit.h"
#include "engine/session/turn_planner.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/caller.h"
#include "server/generate_reactor.h"
#include "server/metrics.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// What stored characters, durable sessions and memory need; all borrowed, all but commit_queue
// may be null (no data directory: character RPCs answer FAILED_PRECONDITION; no memory: turns
// recall nothing).
struct RolePlayDeps {
  CharacterRegistry* characters = nullptr;
  MemoryService* memory = nullptr;
  MemoryRater* rater = nullptr;     // query emotions scored from the message
  const ModelSummarizer* summarizer = nullptr;  // folds turns that outgrow the context; null: drop
  // Every turn's commit runs here, never on the engine thread; full: the turn ends
  // RESOURCE_EXHAUSTED, uncommitted. REQUIRES: non-null.
  WorkQueue* commit_queue = nullptr;
  // The next fold's summaries, made ahead of the turn that folds (turn_planner.h); null: the
  // folding turn makes its own.
  WorkQueue* summary_queue = nullptr;
  CharacterPromptOptions prompt_options;
  int64_t lore_scan_budget = kDefaultLoreScanBudget;  // key-bytes per turn (engine/character/lorebook.h)
  ConversationOptions conversation;  // the context budget and fold marks (turn_planner.h)
  // What a turn's unset sampling fields take (ServerOptions::chat_sampling).
  SamplingParams chat_sampling;
};

// Thread-safe: gRPC calls the handlers concurrently; the service holds no mutable state. The
// handlers have the signatures of v1::RolePlay::CallbackService's (RolePlayService forwards).
// Every handler acts for caller.tenant: another tenant's session and character ids answer
// NOT_FOUND, ListSessions lists the caller's only, and a turn recalls only memories of the
// session's tenant.
class SessionService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `metrics` may be null.
  SessionService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue, Metrics* metrics,
                 RolePlayDeps roleplay);

  grpc::ServerWriteReactor<v1::ChatResponse>* Chat(grpc::CallbackServerContext* context,
                                                   const Caller& caller,
                                                   const v1::ChatRequest* request);
  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const Caller& caller,
                                          const v1::CreateSessionRequest* request, v1::Session* response);
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const Caller& caller,
                                       const v1::GetSessionRequest* request, v1::Session* response);
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const Caller& caller,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response);
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const Caller& caller,
                                          const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response);

 private:
  struct ChatJob;  // a validated Chat request

  // Chat's second half, on a preparation worker: looks the session up and plans its turn.
  void PrepareTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job);
  // A turn of an inline session (a name and a system prompt).
  void PrepareInlineTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job, const Session& session);
  // A turn of a stored character's session: memory, lore, summary (PlanTurn).
  void PrepareCharacterTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job,
                            const Session& session);
  // Commits `turn` (CommitTurn) once the reply finished OK and the client is still there, on a
  // commit worker.
  void CommitWhenDone(ChatStreamReactor& reactor, PendingTurn turn);
  // Starts the background summary a turn's plan asks for, if no other has claimed it.
  void StartPrefold(const Session& session, const std::string& character_name, int priority, PrefoldJob job);
  // The fold marks of a turn that may generate max_tokens.
  FoldMarks FoldMarksFor(int max_tokens) const;
  // Counts the plan in the metrics; what the final ChatResponse reports of it.
  v1::PromptPlan ReportPlan(const TurnPlan& plan) const;

  // Constant after construction.
  Engine& engine_;
  SessionStore& sessions_;
  WorkQueue& prepare_queue_;
  Metrics* const metrics_;
  const RolePlayDeps roleplay_;
};

}  // namespace troupe
