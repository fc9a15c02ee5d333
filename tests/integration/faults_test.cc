// Faults through the real server (stories260K on 127.0.0.1:0, real gRPC, a real SQLite file):
// a fault inside one request ends that RPC with INTERNAL while the others and later ones are
// served; a full commit queue ends a chat turn RESOURCE_EXHAUSTED, uncommitted, instead of
// committing on the engine thread; a damaged database keeps the server from starting, naming
// the file.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/store/sqlite_store.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {
namespace {

constexpr uint64_t kPoisonSeed = 13;  // the fault hook throws for requests with this seed

std::unique_ptr<Engine> StoriesEngine(EngineFaultHooks hooks = {}) {
  EngineOptions options;
  options.model_path = testing::StoriesPath();
  options.num_threads = 2;
  options.kv_cache_bytes = 16ll << 20;
  options.fault_hooks_for_testing = std::move(hooks);
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

ServerOptions LocalOptions() {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.metrics.port = -1;
  options.shutdown_grace = absl::Seconds(5);
  return options;
}

std::unique_ptr<v1::RolePlay::Stub> StubFor(const Server& server) {
  return v1::RolePlay::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port()),
                                                   grpc::InsecureChannelCredentials()));
}

struct Streamed {
  std::string text;
  grpc::Status status;
};

template <typename Response>
Streamed Drain(grpc::ClientReader<Response>& reader) {
  Streamed out;
  Response response;
  while (reader.Read(&response)) out.text += response.text();
  out.status = reader.Finish();
  return out;
}

Streamed Generate(v1::RolePlay::Stub& stub, std::optional<uint64_t> seed) {
  v1::GenerateRequest request;
  request.set_prompt("Once upon a time");
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_tokens(16);
  request.mutable_sampling()->set_ignore_eos(true);
  if (seed) request.mutable_sampling()->set_seed(*seed);
  grpc::ClientContext context;
  return Drain(*stub.Generate(&context, request));
}

TEST(FaultsTest, AFaultInOneRequestIsInternalAndTheServerGoesOn) {
  EngineFaultHooks hooks;
  hooks.before_sample = [](const Request& request) {
    if (request.sampling.seed == kPoisonSeed) throw std::out_of_range("vector::_M_range_check");
  };
  std::unique_ptr<Engine> engine = StoriesEngine(std::move(hooks));
  ASSERT_NE(engine, nullptr);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(std::move(engine), LocalOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<v1::RolePlay::Stub> stub = StubFor(**server);
  const Streamed want = Generate(*stub, std::nullopt);
  ASSERT_TRUE(want.status.ok()) << want.status.error_message();

  std::vector<Streamed> results(6);
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&, i] {
      results[i] = Generate(*stub, i == 2 ? std::optional<uint64_t>(kPoisonSeed) : std::optional<uint64_t>(i));
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < 6; ++i) {
    if (i == 2) {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::INTERNAL);
      EXPECT_NE(results[i].status.error_message().find("_M_range_check"), std::string::npos)
          << results[i].status.error_message();
    } else {
      ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
      EXPECT_EQ(results[i].text, want.text);
    }
  }
  const Streamed after = Generate(*stub, std::nullopt);
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.text, want.text);
  EXPECT_EQ((*server)->engine().Stats().kv_blocks_used, 0);
}

// With no room in the commit queue a finished turn is not committed anywhere, in particular not
// on the engine thread: the client gets RESOURCE_EXHAUSTED and the history stays as it was.
TEST(FaultsTest, AFullCommitQueueIsResourceExhaustedAndTheTurnIsNotSaved) {
  std::unique_ptr<Engine> engine = StoriesEngine();
  ASSERT_NE(engine, nullptr);
  ServerOptions options = LocalOptions();
  options.commit.max_queued = 0;  // every commit finds the queue full
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(std::move(engine), options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<v1::RolePlay::Stub> stub = StubFor(**server);

  v1::CreateSessionRequest create;
  create.mutable_character()->set_name("Lily");
  v1::Session session;
  grpc::ClientContext create_context;
  ASSERT_TRUE(stub->CreateSession(&create_context, create, &session).ok());
  v1::ChatRequest chat;
  chat.set_session_id(session.session_id());
  chat.set_message("Hi Lily!");
  chat.mutable_sampling()->set_temperature(0);
  chat.mutable_sampling()->set_max_tokens(8);
  grpc::ClientContext chat_context;
  const Streamed turn = Drain(*stub->Chat(&chat_context, chat));
  EXPECT_EQ(turn.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << turn.status.error_message();
  EXPECT_NE(turn.status.error_message().find("not saved"), std::string::npos) << turn.status.error_message();
  EXPECT_NE(turn.status.error_message().find("turn commits"), std::string::npos) << turn.status.error_message();

  v1::GetSessionRequest get;
  get.set_session_id(session.session_id());
  grpc::ClientContext get_context;
  ASSERT_TRUE(stub->GetSession(&get_context, get, &session).ok());
  EXPECT_EQ(session.history_size(), 0);
  const Streamed after = Generate(*stub, std::nullopt);  // the engine is untouched
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ((*server)->engine().Stats().kv_blocks_used, 0);
}

TEST(FaultsTest, AGarbledDatabaseKeepsTheServerFromStartingNamingTheFile) {
  const testing::ScopedTempDir data_dir("faults_test");
  const std::string path = data_dir.File("troupe.db");
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutCharacter("", {.id = "c1", .card_json = "{}", .create_time_ms = 1, .update_time_ms = 1}).ok());
  }
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 0u);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(size, '\x5a');

  std::unique_ptr<Engine> engine = StoriesEngine();
  ASSERT_NE(engine, nullptr);
  ServerOptions options = LocalOptions();
  options.data_dir = data_dir.path().string();
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(std::move(engine), options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition) << server.status();
  EXPECT_NE(server.status().message().find(path), std::string::npos) << server.status();
}

}  // namespace
}  // namespace troupe
