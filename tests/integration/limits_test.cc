// Issue #13's limits, tried from outside as a hostile client would: every client-sized field
// over its cap (server/limits.h) is INVALID_ARGUMENT naming the field, its size and the cap;
// gRPC's receive limit admits the largest accepted card and refuses larger messages; hostile
// JSON nesting on every path that parses JSON is refused while the server keeps serving.
// The real server in process on 127.0.0.1:0 with stories260K and a SQLite data directory.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/character/card_png.h"
#include "engine/engine.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/limits.h"
#include "server/server.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"
#include "tests/testing/testdata.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {
namespace {

std::unique_ptr<Server> StartServer(const std::string& data_dir) {
  EngineOptions engine_options;
  engine_options.model_path = testing::StoriesPath();
  engine_options.num_threads = 2;
  engine_options.kv_cache_bytes = 16ll << 20;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(engine_options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return nullptr;
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.metrics.port = -1;
  options.data_dir = data_dir;
  options.embedding_model_dir = "";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(*std::move(engine), options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Expects `status` to be INVALID_ARGUMENT and its message to contain every piece of `parts`.
void ExpectRefused(const grpc::Status& status, std::initializer_list<std::string> parts) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  for (const std::string& part : parts) {
    EXPECT_NE(status.error_message().find(part), std::string::npos)
        << "'" << part << "' not in: " << status.error_message();
  }
}

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new std::string(::testing::TempDir() + "troupe_limits_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(*data_dir_);
    server_ = StartServer(*data_dir_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(*data_dir_);
    delete data_dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::RolePlay::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                                      grpc::InsecureChannelCredentials()));
  }

  grpc::Status Generate(const v1::GenerateRequest& request) {
    grpc::ClientContext context;
    auto reader = stub_->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }
  grpc::Status Chat(const v1::ChatRequest& request) {
    grpc::ClientContext context;
    auto reader = stub_->Chat(&context, request);
    v1::ChatResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }
  grpc::Status CreateSession(const v1::CreateSessionRequest& request, v1::Session* session = nullptr) {
    v1::Session ignored;
    grpc::ClientContext context;
    return stub_->CreateSession(&context, request, session != nullptr ? session : &ignored);
  }
  grpc::Status CreateCharacter(const v1::CreateCharacterRequest& request, v1::StoredCharacter* out = nullptr) {
    v1::StoredCharacter ignored;
    grpc::ClientContext context;
    return stub_->CreateCharacter(&context, request, out != nullptr ? out : &ignored);
  }
  // The server still answers (and so still runs) after a refused request.
  void ExpectServing() {
    v1::ServerInfo info;
    grpc::ClientContext context;
    const grpc::Status status = stub_->GetServerInfo(&context, v1::GetServerInfoRequest(), &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::GenerateRequest request;
    request.set_prompt("Once upon a time");
    request.mutable_sampling()->set_max_tokens(2);
    EXPECT_TRUE(Generate(request).ok());
  }

  static std::string* data_dir_;
  static Server* server_;
  std::unique_ptr<v1::RolePlay::Stub> stub_;
};
std::string* LimitsTest::data_dir_ = nullptr;
Server* LimitsTest::server_ = nullptr;

// ---- byte caps ----

TEST_F(LimitsTest, GeneratePromptOverTheByteCapIsRefusedBeforeTokenizing) {
  const RequestLimits limits = RequestLimitsFor(server_->engine().model_info());
  v1::GenerateRequest request;
  request.set_prompt(std::string(limits.max_prompt_bytes + 1, 'a'));
  // The message names the byte cap, not the token limit: the prompt was never tokenized.
  ExpectRefused(Generate(request), {"prompt: ", absl::StrCat(limits.max_prompt_bytes + 1, " bytes"),
                                    absl::StrCat("the limit is ", limits.max_prompt_bytes)});
  ExpectServing();
}

TEST_F(LimitsTest, PromptTokenIdsOverTheContextAreRefusedByCount) {
  const int context = server_->engine().model_info().max_model_len;
  v1::GenerateRequest request;
  for (int i = 0; i <= context; ++i) request.add_prompt_token_ids(1);
  ExpectRefused(Generate(request), {"prompt_token_ids: ", absl::StrCat(context + 1, " ids"),
                                    absl::StrCat("the limit is ", context)});
}

TEST_F(LimitsTest, CacheSaltOverItsCapIsRefused) {
  v1::GenerateRequest request;
  request.set_prompt("Once upon a time");
  request.set_cache_salt(std::string(kMaxCacheSaltBytes + 1, 's'));
  ExpectRefused(Generate(request), {"cache_salt: ", absl::StrCat("the limit is ", kMaxCacheSaltBytes)});
}

TEST_F(LimitsTest, InlineCharacterNameAndSystemPromptAreCapped) {
  v1::CreateSessionRequest request;
  request.mutable_character()->set_name(std::string(kMaxNameBytes + 1, 'n'));
  ExpectRefused(CreateSession(request), {"character.name: ", absl::StrCat(kMaxNameBytes + 1, " bytes"),
                                         absl::StrCat("the limit is ", kMaxNameBytes)});
  request.mutable_character()->set_name("Lily");
  request.mutable_character()->set_system_prompt(std::string(kMaxInlineSystemPromptBytes + 1, 'p'));
  ExpectRefused(CreateSession(request), {"character.system_prompt: ",
                                         absl::StrCat("the limit is ", kMaxInlineSystemPromptBytes)});
  request.mutable_character()->set_system_prompt(std::string(1000, 'p'));
  EXPECT_TRUE(CreateSession(request).ok());
}

TEST_F(LimitsTest, SetupTextsAreCapped) {
  v1::CreateSessionRequest request;
  request.set_character_id("00000000000000000000000000000000");
  request.mutable_setup()->set_user_persona(std::string(kMaxSetupTextBytes + 1, 'p'));
  ExpectRefused(CreateSession(request), {"setup.user_persona: "});
  request.mutable_setup()->clear_user_persona();
  request.mutable_setup()->mutable_point_in_time()->set_label(std::string(kMaxNameBytes + 1, 'l'));
  ExpectRefused(CreateSession(request), {"setup.point_in_time.label: "});
}

TEST_F(LimitsTest, IdsOverTheirCapAreInvalidArgumentNotNotFound) {
  const std::string long_id(kMaxIdBytes + 1, 'a');
  v1::GetSessionRequest get;
  get.set_session_id(long_id);
  v1::Session session;
  grpc::ClientContext get_context;
  ExpectRefused(stub_->GetSession(&get_context, get, &session), {"session_id: "});

  v1::GetCharacterRequest get_character;
  get_character.set_character_id(long_id);
  v1::StoredCharacter character;
  grpc::ClientContext character_context;
  ExpectRefused(stub_->GetCharacter(&character_context, get_character, &character), {"character_id: "});

  v1::ListCharactersRequest list;
  list.set_page_token(long_id);
  v1::ListCharactersResponse listed;
  grpc::ClientContext list_context;
  ExpectRefused(stub_->ListCharacters(&list_context, list, &listed), {"page_token: "});

  v1::ChatRequest chat;
  chat.set_session_id(long_id);
  chat.set_message("hello");
  ExpectRefused(Chat(chat), {"session_id: "});
}

TEST_F(LimitsTest, ChatMessageOverItsCapIsRefused) {
  v1::ChatRequest chat;
  chat.set_session_id("00000000000000000000000000000000");
  chat.set_message(std::string(kMaxChatMessageBytes + 1, 'm'));
  ExpectRefused(Chat(chat), {"message: ", absl::StrCat("the limit is ", kMaxChatMessageBytes)});
}

TEST_F(LimitsTest, EveryProfileStringIsCappedAndNamedByPath) {
  v1::CreateCharacterRequest request;
  v1::CharacterProfile* profile = request.mutable_profile();
  profile->set_name("Keeper");
  v1::LoreEntry* entry = profile->mutable_lorebook()->add_entries();
  entry->add_keys("lamp");
  entry->add_keys(std::string(kMaxCardTextBytes + 1, 'k'));
  entry->set_content("The lamp is old.");
  ExpectRefused(CreateCharacter(request), {"profile.lorebook.entries[0].keys[1]: ",
                                           absl::StrCat("the limit is ", kMaxCardTextBytes)});

  entry->mutable_keys()->RemoveLast();
  profile->add_tags(std::string(kMaxCardTextBytes + 1, 't'));
  ExpectRefused(CreateCharacter(request), {"profile.tags[0]: "});

  // Many strings each under the cap, together over the profile's cap.
  profile->clear_tags();
  for (int i = 0; i < 10; ++i) profile->add_alternate_greetings(std::string(kMaxCardTextBytes, 'g'));
  ExpectRefused(CreateCharacter(request), {"profile: ", absl::StrCat("the limit is ", kMaxProfileBytes)});
  profile->clear_alternate_greetings();
  EXPECT_TRUE(CreateCharacter(request).ok());
}

// ---- gRPC's receive limit ----

// `png` with a private ancillary chunk inserted before IEND so that the file is `total` bytes.
std::string PaddedPng(const std::string& png, size_t total) {
  const size_t iend = png.size() - 12;  // length, "IEND", CRC
  const size_t payload = total - png.size() - 12;
  std::string chunk;
  for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<char>((payload >> shift) & 0xff));
  std::string body = "prVt" + std::string(payload, '\x5a');
  const uint32_t crc = PngCrc32(body);
  chunk += body;
  for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<char>((crc >> shift) & 0xff));
  return png.substr(0, iend) + chunk + png.substr(iend);
}

TEST_F(LimitsTest, PngCardJustUnderItsLimitIsAccepted) {
  const std::string png = PaddedPng(testing::ReadTestData("cards/lighthouse_keeper.png"), kMaxCardPngBytes - 16);
  ASSERT_EQ(png.size(), kMaxCardPngBytes - 16);
  ASSERT_TRUE(ReadCardFromPng(png).ok());
  v1::CreateCharacterRequest request;
  request.set_card_png(png);
  v1::StoredCharacter character;
  const grpc::Status status = CreateCharacter(request, &character);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_FALSE(character.profile().name().empty());
}

TEST_F(LimitsTest, PngCardOverItsLimitIsInvalidArgument) {
  const std::string png = PaddedPng(testing::ReadTestData("cards/lighthouse_keeper.png"), kMaxCardPngBytes + 1);
  v1::CreateCharacterRequest request;
  request.set_card_png(png);
  ExpectRefused(CreateCharacter(request), {"card_png: ", absl::StrCat("the limit is ", kMaxCardPngBytes)});
}

TEST_F(LimitsTest, MessageOverTheReceiveLimitIsResourceExhaustedAndTheServerServesOn) {
  const int receive_limit = MaxReceiveMessageBytes(RequestLimitsFor(server_->engine().model_info()));
  v1::CreateCharacterRequest request;
  request.set_card_png(std::string(static_cast<size_t>(receive_limit) + 1, 'x'));
  const grpc::Status status = CreateCharacter(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  ExpectServing();
}

}  // namespace
}  // namespace troupe
