// A real troupe Server for the integration tests: `model_path` on the CPU backend (2 threads),
// gRPC on 127.0.0.1 at a free port, metrics off. `tweak` adjusts the options before the start.
// ReadChatStream reads a Chat reply to its end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "grpcpp/support/sync_stream.h"
#include "server/server.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe::testing {

struct TestServerOptions {
  std::string model_path;
  int64_t kv_cache_bytes = 64ll << 20;
  std::string data_dir;             // "" = none
  std::string embedding_model_dir;  // "" = the model's own hidden states
};

// Null, with a test failure, when the engine or the server does not start.
inline std::unique_ptr<Server> StartTestServer(const TestServerOptions& test,
                                               const std::function<void(ServerOptions&)>& tweak = nullptr) {
  EngineOptions engine_options;
  engine_options.model_path = test.model_path;
  engine_options.num_threads = 2;
  engine_options.kv_cache_bytes = test.kv_cache_bytes;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(engine_options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return nullptr;
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.metrics.port = -1;
  options.data_dir = test.data_dir;
  options.embedding_model_dir = test.embedding_model_dir;
  if (tweak) tweak(options);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(*std::move(engine), options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A Chat stream read to its end: the reply's text, the final message and the status.
struct ChatTurnResult {
  std::string text;
  v1::ChatResponse last;
  grpc::Status status;
};

inline ChatTurnResult ReadChatStream(grpc::ClientReaderInterface<v1::ChatResponse>& reader) {
  ChatTurnResult result;
  v1::ChatResponse response;
  while (reader.Read(&response)) {
    result.text += response.text();
    result.last = response;
  }
  result.status = reader.Finish();
  return result;
}

}  // namespace troupe::testing
