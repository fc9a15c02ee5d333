// The generation family of troupe.v1.RolePlay: Generate (completion of a prompt, of token ids,
// or of a conversation rendered with the chat template, optionally as a stored character;
// streamed) and GetServerInfo (the served model). Generate validates the request in
// the reaction and tokenizes on a preparation worker. See docs/api.md for the RPC contracts.
#pragma once

#include "engine/character/character_registry.h"
#include "engine/engine.h"
#include "engine/session/character_prompt.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/caller.h"
#include "server/metrics.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// Thread-safe: gRPC calls the handlers concurrently; the service holds no mutable state. The
// handlers have the signatures of v1::RolePlay::CallbackService's (RolePlayService forwards).
class GenerationService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `metrics` may be null.
  // `characters` may be null (no database: Generate with a character_id fails).
  GenerationService(Engine& engine, WorkQueue& prepare_queue, Metrics* metrics, CharacterRegistry* characters,
                    CharacterPromptOptions prompt_options);

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const Caller& caller,
                                                           const v1::GenerateRequest* request);
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const Caller& caller,
                                          const v1::GetServerInfoRequest* request, v1::ServerInfo* response);

 private:
  // Constant after construction.
  Engine& engine_;
  WorkQueue& prepare_queue_;
  Metrics* const metrics_;
  CharacterRegistry* const characters_;
  const CharacterPromptOptions prompt_options_;
};

}  // namespace troupe
