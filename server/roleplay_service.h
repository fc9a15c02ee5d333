// The troupe.v1.RolePlay service as gRPC registers it: one CallbackService object per proto
// service, whose handlers forward to the RPC families:
//   GenerationService  Generate, GetServerInfo                       (generation_service.h)
//   CharacterService   Create/Get/List/Update/Delete/ExportCharacter  (character_service.h)
//   SessionService     Create/Get/List/DeleteSession, Chat            (session_service.h)
// Reactions validate the request cheaply, hand the rest to the WorkQueue and return a reactor;
// they never block. Each handler first resolves the caller (server/auth/caller.h), then checks
// the request's sizes (server/limits.h); a refused caller or an oversized field ends the RPC
// before the family sees it. See docs/api.md for the RPC contracts.
#pragma once

#include "engine/engine.h"
#include "engine/session/session_store.h"
#include "server/auth/caller.h"
#include "server/character_service.h"
#include "server/generation_service.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/session_service.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {

// Thread-safe: gRPC calls the handlers concurrently; the families hold no mutable state.
class RolePlayService final : public v1::RolePlay::CallbackService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `metrics` may be null.
  // `resolve_caller` names the tenant of each RPC (default: one anonymous tenant).
  RolePlayService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue, Metrics* metrics,
                  RolePlayDeps roleplay = {}, CallerResolver resolve_caller = AnonymousCallers());

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const v1::GetServerInfoRequest* request,
                                          v1::ServerInfo* response) override;

  grpc::ServerUnaryReactor* CreateCharacter(grpc::CallbackServerContext* context,
                                            const v1::CreateCharacterRequest* request,
                                            v1::StoredCharacter* response) override;
  grpc::ServerUnaryReactor* GetCharacter(grpc::CallbackServerContext* context,
                                         const v1::GetCharacterRequest* request,
                                         v1::StoredCharacter* response) override;
  grpc::ServerUnaryReactor* ListCharacters(grpc::CallbackServerContext* context,
                                           const v1::ListCharactersRequest* request,
                                           v1::ListCharactersResponse* response) override;
  grpc::ServerUnaryReactor* UpdateCharacter(grpc::CallbackServerContext* context,
                                            const v1::UpdateCharacterRequest* request,
                                            v1::StoredCharacter* response) override;
  grpc::ServerUnaryReactor* DeleteCharacter(grpc::CallbackServerContext* context,
                                            const v1::DeleteCharacterRequest* request,
                                            v1::DeleteCharacterResponse* response) override;
  grpc::ServerUnaryReactor* ExportCharacter(grpc::CallbackServerContext* context,
                                            const v1::ExportCharacterRequest* request,
                                            v1::ExportCharacterResponse* response) override;

  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const v1::CreateSessionRequest* request,
                                          v1::Session* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const v1::GetSessionRequest* request,
                                       v1::Session* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response) override;
  grpc::ServerWriteReactor<v1::ChatResponse>* Chat(grpc::CallbackServerContext* context,
                                                   const v1::ChatRequest* request) override;

 private:
  // The caller of an RPC of `kind`, admitted against its key's limits (its lease set). A
  // refusal is counted in the metrics and, for a limit, adds the retry-after-ms trailer.
  absl::StatusOr<Caller> Admit(grpc::CallbackServerContext& context, CallKind kind);

  // Constant after construction.
  Engine& engine_;
  Metrics* const metrics_;  // may be null
  const CallerResolver resolve_caller_;
  const RequestLimits limits_;  // checked before the families see a request (server/limits.h)
  GenerationService generation_;
  CharacterService characters_;
  SessionService sessions_;
};

}  // namespace troupe
