#include "server/roleplay_service.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/generate_reactor.h"
#include "server/limits.h"
#include "server/rpc_util.h"

namespace troupe {
namespace {

// A streaming RPC refused before any work: the reactor ends it with `status` at once.
template <typename Response>
grpc::ServerWriteReactor<Response>* RefusedStream(Engine& engine, const absl::Status& status) {
  std::shared_ptr<GenerateReactor<Response>> reactor =
      GenerateReactor<Response>::Create(engine, /*metrics=*/nullptr, /*lease=*/nullptr);
  reactor->FinishWithError(status);
  return reactor.get();
}

}  // namespace

RolePlayService::RolePlayService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue,
                                 Metrics* metrics, RolePlayDeps roleplay, CallerResolver resolve_caller)
    : engine_(engine),
      metrics_(metrics),
      resolve_caller_(std::move(resolve_caller)),
      limits_(RequestLimitsFor(engine.model_info())),
      generation_(engine, prepare_queue, metrics, roleplay.characters, roleplay.prompt_options),
      characters_(prepare_queue, roleplay.characters, roleplay.memory),
      sessions_(engine, sessions, prepare_queue, metrics, std::move(roleplay)) {}

absl::StatusOr<Caller> RolePlayService::Admit(grpc::CallbackServerContext& context, CallKind kind) {
  absl::StatusOr<Caller> caller = resolve_caller_(context);
  if (!caller.ok()) {
    if (metrics_ != nullptr && caller.status().code() == absl::StatusCode::kUnauthenticated) {
      metrics_->CountRejection("unauthenticated", "");
    }
    return caller;
  }
  if (caller->limiter == nullptr) return caller;
  Refusal refusal;
  absl::StatusOr<std::shared_ptr<CallLease>> lease = AdmitCall(caller->limiter, kind, &refusal);
  if (!lease.ok()) {
    const absl::Duration wait = absl::Ceil(refusal.retry_after, absl::Milliseconds(1));
    const int64_t retry_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(wait));
    context.AddTrailingMetadata("retry-after-ms", absl::StrCat(retry_ms));
    if (metrics_ != nullptr) metrics_->CountRejection(refusal.reason, caller->tenant);
    return lease.status();
  }
  caller->lease = *std::move(lease);
  return caller;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* RolePlayService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kStream);
  if (!caller.ok()) return RefusedStream<v1::GenerateResponse>(engine_, caller.status());
  if (absl::Status within = CheckLimits(*request, limits_); !within.ok()) {
    return RefusedStream<v1::GenerateResponse>(engine_, within);
  }
  return generation_.Generate(context, *caller, request);
}

grpc::ServerUnaryReactor* RolePlayService::GetServerInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetServerInfoRequest* request,
                                                         v1::ServerInfo* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  return generation_.GetServerInfo(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::CreateCharacter(grpc::CallbackServerContext* context,
                                                           const v1::CreateCharacterRequest* request,
                                                           v1::StoredCharacter* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.CreateCharacter(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::GetCharacter(grpc::CallbackServerContext* context,
                                                        const v1::GetCharacterRequest* request,
                                                        v1::StoredCharacter* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.GetCharacter(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ListCharacters(grpc::CallbackServerContext* context,
                                                          const v1::ListCharactersRequest* request,
                                                          v1::ListCharactersResponse* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.ListCharacters(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::UpdateCharacter(grpc::CallbackServerContext* context,
                                                           const v1::UpdateCharacterRequest* request,
                                                           v1::StoredCharacter* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.UpdateCharacter(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::DeleteCharacter(grpc::CallbackServerContext* context,
                                                           const v1::DeleteCharacterRequest* request,
                                                           v1::DeleteCharacterResponse* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.DeleteCharacter(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ExportCharacter(grpc::CallbackServerContext* context,
                                                           const v1::ExportCharacterRequest* request,
                                                           v1::ExportCharacterResponse* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return characters_.ExportCharacter(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::CreateSession(grpc::CallbackServerContext* context,
                                                         const v1::CreateSessionRequest* request,
                                                         v1::Session* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return sessions_.CreateSession(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::GetSession(grpc::CallbackServerContext* context,
                                                      const v1::GetSessionRequest* request,
                                                      v1::Session* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return sessions_.GetSession(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ListSessions(grpc::CallbackServerContext* context,
                                                        const v1::ListSessionsRequest* request,
                                                        v1::ListSessionsResponse* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return sessions_.ListSessions(context, *caller, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::DeleteSession(grpc::CallbackServerContext* context,
                                                         const v1::DeleteSessionRequest* request,
                                                         v1::DeleteSessionResponse* response) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kUnary);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return FinishUnary(context, within);
  return sessions_.DeleteSession(context, *caller, request, response);
}

grpc::ServerWriteReactor<v1::ChatResponse>* RolePlayService::Chat(grpc::CallbackServerContext* context,
                                                                 const v1::ChatRequest* request) {
  absl::StatusOr<Caller> caller = Admit(*context, CallKind::kStream);
  if (!caller.ok()) return RefusedStream<v1::ChatResponse>(engine_, caller.status());
  if (absl::Status within = CheckLimits(*request); !within.ok()) return RefusedStream<v1::ChatResponse>(engine_, within);
  return sessions_.Chat(context, *caller, request);
}

}  // namespace troupe
