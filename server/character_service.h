// The character family of troupe.v1.RolePlay: CreateCharacter, GetCharacter, ListCharacters,
// UpdateCharacter, DeleteCharacter and ExportCharacter (profiles, JSON and PNG cards with their
// lorebooks). Every handler runs on a preparation worker (the registry reads and writes the
// database). See docs/api.md and docs/characters.md.
#pragma once

#include "engine/character/character_registry.h"
#include "engine/memory/memory_service.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/caller.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// Thread-safe: gRPC calls the handlers concurrently; the service holds no mutable state. The
// handlers have the signatures of v1::RolePlay::CallbackService's (RolePlayService forwards).
// Every handler acts for caller.tenant: another tenant's character ids answer NOT_FOUND, and
// ListCharacters lists the caller's only.
class CharacterService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `characters` may be
  // null (no data directory: every RPC answers FAILED_PRECONDITION); `memory` may be null (the
  // characters' experiences are not indexed).
  CharacterService(WorkQueue& prepare_queue, CharacterRegistry* characters, MemoryService* memory);

  grpc::ServerUnaryReactor* CreateCharacter(grpc::CallbackServerContext* context,
                                            const Caller& caller,
                                            const v1::CreateCharacterRequest* request,
                                            v1::StoredCharacter* response);
  grpc::ServerUnaryReactor* GetCharacter(grpc::CallbackServerContext* context,
                                         const Caller& caller,
                                         const v1::GetCharacterRequest* request,
                                         v1::StoredCharacter* response);
  grpc::ServerUnaryReactor* ListCharacters(grpc::CallbackServerContext* context,
                                           const Caller& caller,
                                           const v1::ListCharactersRequest* request,
                                           v1::ListCharactersResponse* response);
  grpc::ServerUnaryReactor* UpdateCharacter(grpc::CallbackServerContext* context,
                                            const Caller& caller,
                                            const v1::UpdateCharacterRequest* request,
                                            v1::StoredCharacter* response);
  grpc::ServerUnaryReactor* DeleteCharacter(grpc::CallbackServerContext* context,
                                            const Caller& caller,
                                            const v1::DeleteCharacterRequest* request,
                                            v1::DeleteCharacterResponse* response);
  grpc::ServerUnaryReactor* ExportCharacter(grpc::CallbackServerContext* context,
                                            const Caller& caller,
                                            const v1::ExportCharacterRequest* request,
                                            v1::ExportCharacterResponse* response);

 private:
  // Makes the character's experiences searchable memories (its tenant's character scope), in
  // the background.
  void IndexExperiences(const StoredCharacter& character);

  // Constant after construction.
  WorkQueue& prepare_queue_;
  CharacterRegistry* const characters_;
  MemoryService* const memory_;
};

}  // namespace troupe
