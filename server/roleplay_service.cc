#include "server/roleplay_service.h"

#include <utility>

namespace troupe {

RolePlayService::RolePlayService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue,
                                 Metrics* metrics, RolePlayDeps roleplay)
    : generation_(engine, prepare_queue, metrics),
      characters_(prepare_queue, roleplay.characters, roleplay.memory),
      sessions_(engine, sessions, prepare_queue, metrics, std::move(roleplay)) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* RolePlayService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return generation_.Generate(context, request);
}

grpc::ServerUnaryReactor* RolePlayService::GetServerInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetServerInfoRequest* request,
                                                         v1::ServerInfo* response) {
  return generation_.GetServerInfo(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::CreateCharacter(grpc::CallbackServerContext* context,
                                                           const v1::CreateCharacterRequest* request,
                                                           v1::StoredCharacter* response) {
  return characters_.CreateCharacter(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::GetCharacter(grpc::CallbackServerContext* context,
                                                        const v1::GetCharacterRequest* request,
                                                        v1::StoredCharacter* response) {
  return characters_.GetCharacter(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ListCharacters(grpc::CallbackServerContext* context,
                                                          const v1::ListCharactersRequest* request,
                                                          v1::ListCharactersResponse* response) {
  return characters_.ListCharacters(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::UpdateCharacter(grpc::CallbackServerContext* context,
                                                           const v1::UpdateCharacterRequest* request,
                                                           v1::StoredCharacter* response) {
  return characters_.UpdateCharacter(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::DeleteCharacter(grpc::CallbackServerContext* context,
                                                           const v1::DeleteCharacterRequest* request,
                                                           v1::DeleteCharacterResponse* response) {
  return characters_.DeleteCharacter(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ExportCharacter(grpc::CallbackServerContext* context,
                                                           const v1::ExportCharacterRequest* request,
                                                           v1::ExportCharacterResponse* response) {
  return characters_.ExportCharacter(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::CreateSession(grpc::CallbackServerContext* context,
                                                         const v1::CreateSessionRequest* request,
                                                         v1::Session* response) {
  return sessions_.CreateSession(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::GetSession(grpc::CallbackServerContext* context,
                                                      const v1::GetSessionRequest* request,
                                                      v1::Session* response) {
  return sessions_.GetSession(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::ListSessions(grpc::CallbackServerContext* context,
                                                        const v1::ListSessionsRequest* request,
                                                        v1::ListSessionsResponse* response) {
  return sessions_.ListSessions(context, request, response);
}

grpc::ServerUnaryReactor* RolePlayService::DeleteSession(grpc::CallbackServerContext* context,
                                                         const v1::DeleteSessionRequest* request,
                                                         v1::DeleteSessionResponse* response) {
  return sessions_.DeleteSession(context, request, response);
}

grpc::ServerWriteReactor<v1::ChatResponse>* RolePlayService::Chat(grpc::CallbackServerContext* context,
                                                                 const v1::ChatRequest* request) {
  return sessions_.Chat(context, request);
}

}  // namespace troupe
