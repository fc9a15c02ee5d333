// The troupe.v1.RolePlay service. Reactions validate the request cheaply, hand prompt
// preparation (session lookup, chat template, tokenization) to the WorkQueue and return a
// reactor; they never block. See docs/api.md for the RPC contracts.
#pragma once

#include "engine/engine.h"
#include "engine/session/session_store.h"
#include "server/metrics.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {

// Thread-safe: gRPC calls the handlers concurrently; the service itself holds no mutable state.
class ChatService final : public v1::RolePlay::CallbackService {
 public:
  // All borrowed; each must outlive the service and every RPC it started. `metrics` may be null.
  ChatService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue, Metrics* metrics);

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
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* context,
                                          const v1::GetServerInfoRequest* request,
                                          v1::ServerInfo* response) override;

 private:
  Engine& engine_;
  SessionStore& sessions_;
  WorkQueue& prepare_queue_;
  Metrics* const metrics_;
};

}  // namespace troupe
