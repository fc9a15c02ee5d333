// The troupe.v1.RolePlay service. Reactions validate the request cheaply, hand prompt
// preparation (session lookup, chat template, tokenization) to the WorkQueue and return a
// reactor; they never block. See docs/api.md for the RPC contracts.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/character/character_registry.h"
#include "engine/clients/summarizer.h"
#include "engine/engine.h"
#include "engine/memory/memory_service.h"
#include "engine/session/session_store.h"
#include "engine/session/turn_planner.h"
#include "server/generate_reactor.h"
#include "server/metrics.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {

// What stored characters, durable sessions and memory need; all borrowed, all may be null
// (no data directory: character RPCs answer FAILED_PRECONDITION; no memory: turns recall nothing).
struct RolePlayDeps {
  CharacterRegistry* characters = nullptr;
  MemoryService* memory = nullptr;
  MemoryRater* rater = nullptr;     // query emotions scored from the message
  const ModelSummarizer* summarizer = nullptr;  // folds turns that outgrow the context; null: drop
  WorkQueue* commit_queue = nullptr;  // turn commits (database writes) off the engine thread
  CharacterPromptOptions prompt_options;
};

// Thread-safe: gRPC calls the handlers concurrently; the service itself holds no mutable state.
class ChatService final : public v1::RolePlay::CallbackService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `metrics` may be null.
  ChatService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue, Metrics* metrics,
              RolePlayDeps roleplay = {});

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerWriteReactor<v1::ChatResponse>* Chat(grpc::CallbackServerContext* context,
                                                   const v1::ChatRequest* request) override;
  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const v1::CreateSessionRequest* request,
                                          v1::Session* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const v1::GetSessionRequest* request,
                                       v1::Session* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
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
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const v1::GetServerInfoRequest* request,
                                          v1::ServerInfo* response) override;

 private:
  Engine& engine_;
  SessionStore& sessions_;
  WorkQueue& prepare_queue_;
  Metrics* const metrics_;
  const RolePlayDeps roleplay_;

  // A turn of a stored character's session (Chat's second half, on a preparation worker).
  void PrepareCharacterTurn(std::shared_ptr<ChatStreamReactor> reactor, std::shared_ptr<Request> request,
                            Session session, std::string message, TurnMemoryOptions memory,
                            std::optional<EmotionVector> turn_emotion);
  // Makes the character's experiences searchable memories (character scope), in the background.
  void IndexExperiences(std::shared_ptr<const StoredCharacter> character);
};

}  // namespace troupe
