// Issue #13's limits, tried from outside as a hostile client would: every client-sized field
// over its cap (server/limits.h) is INVALID_ARGUMENT naming the field, its size and the cap;
// gRPC's receive limit admits the largest accepted card and refuses larger messages; hostile
// JSON nesting on every path that parses JSON is refused while the server keeps serving.
// The real server in process on 127.0.0.1:0 with stories260K and a SQLite data directory.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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
#include "tests/testing/test_server.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {
namespace {

std::unique_ptr<Server> StartServer(const std::string& data_dir,
                                    const std::function<void(ServerOptions&)>& tweak = nullptr) {
  return testing::StartTestServer(
      {.model_path = testing::StoriesPath(), .kv_cache_bytes = 16ll << 20, .data_dir = data_dir,
       .embedding_model_dir = ""},
      tweak);
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

// ---- JSON nesting on every client path ----

constexpr int kHostileDepth = 120000;

std::string DeepJson() { return std::string(kHostileDepth, '[') + std::string(kHostileDepth, ']'); }

std::string DeepCard() {
  return "{\"spec\":\"chara_card_v2\",\"data\":{\"name\":\"Deep\",\"extensions\":{\"x\":" + DeepJson() + "}}}";
}

TEST_F(LimitsTest, DeeplyNestedJsonIsRefusedOnEveryCharacterPath) {
  auto expect_deep_refused = [&](const grpc::Status& status, const std::string& field) {
    ExpectRefused(status, {field, "nested deeper than"});
    ExpectServing();
  };
  v1::CreateCharacterRequest card;
  card.set_card_json(DeepCard());
  expect_deep_refused(CreateCharacter(card), "card");

  absl::StatusOr<std::string> png =
      WriteCardToPng(testing::ReadTestData("cards/lighthouse_keeper.png"), CardPngText{.chara_json = DeepCard(), .ccv3_json = ""});
  ASSERT_TRUE(png.ok()) << png.status();
  v1::CreateCharacterRequest png_card;
  png_card.set_card_png(*png);
  expect_deep_refused(CreateCharacter(png_card), "card");

  v1::CreateCharacterRequest profile;
  profile.mutable_profile()->set_name("Deep");
  profile.mutable_profile()->set_extensions_json(DeepJson());
  expect_deep_refused(CreateCharacter(profile), "profile.extensions_json");

  profile.mutable_profile()->clear_extensions_json();
  profile.mutable_profile()->mutable_lorebook()->set_extensions_json(DeepJson());
  expect_deep_refused(CreateCharacter(profile), "profile.lorebook.extensions_json");

  profile.mutable_profile()->mutable_lorebook()->clear_extensions_json();
  v1::LoreEntry* entry = profile.mutable_profile()->mutable_lorebook()->add_entries();
  entry->add_keys("deep");
  entry->set_content("deep");
  entry->set_extensions_json(DeepJson());
  expect_deep_refused(CreateCharacter(profile), "profile.lorebook.entries[0].extensions_json");

  // Updates parse the same sources.
  entry->clear_extensions_json();
  v1::StoredCharacter stored;
  ASSERT_TRUE(CreateCharacter(profile, &stored).ok());
  v1::UpdateCharacterRequest update;
  update.set_character_id(stored.character_id());
  update.set_card_json(DeepCard());
  v1::StoredCharacter updated;
  grpc::ClientContext update_context;
  expect_deep_refused(stub_->UpdateCharacter(&update_context, update, &updated), "card");
  update.mutable_profile()->set_name("Deep");
  update.mutable_profile()->set_extensions_json(DeepJson());
  grpc::ClientContext profile_context;
  expect_deep_refused(stub_->UpdateCharacter(&profile_context, update, &updated), "profile.extensions_json");
}

// ---- the lorebook scan budget ----

TEST(LoreBudgetTest, TurnOverTheScanBudgetRunsAndReportsTheSkippedEntries) {
  testing::ScopedTempDir dir("lore_budget");
  std::unique_ptr<Server> server = StartServer(dir.path().string(), [](ServerOptions& options) {
    options.lore_scan_budget = 100;  // key-bytes: two of the five entries' searches below
  });
  ASSERT_NE(server, nullptr);
  auto stub = v1::RolePlay::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                                                        grpc::InsecureChannelCredentials()));
  v1::CreateCharacterRequest create;
  v1::CharacterProfile* profile = create.mutable_profile();
  profile->set_name("Keeper");
  const char* keys[] = {"moon", "sun", "star", "tide", "lamp"};
  for (int i = 0; i < 5; ++i) {
    v1::LoreEntry* entry = profile->mutable_lorebook()->add_entries();
    entry->add_keys(keys[i]);
    entry->set_content(absl::StrCat("About the ", keys[i], "."));
    entry->set_name(keys[i]);
    entry->set_enabled(true);
    entry->set_priority(i);  // lamp (4) and tide (3) are searched first
  }
  v1::StoredCharacter character;
  grpc::ClientContext create_context;
  ASSERT_TRUE(stub->CreateCharacter(&create_context, create, &character).ok());
  v1::CreateSessionRequest session_request;
  session_request.set_character_id(character.character_id());
  session_request.mutable_setup()->set_greeting_index(-1);
  v1::Session session;
  grpc::ClientContext session_context;
  ASSERT_TRUE(stub->CreateSession(&session_context, session_request, &session).ok());

  v1::ChatRequest chat;
  chat.set_session_id(session.session_id());
  chat.set_message("moon sun star tide lamp, all of them at once");  // 45 bytes
  chat.mutable_sampling()->set_max_tokens(2);
  chat.mutable_memory()->set_strategy(v1::RETRIEVAL_STRATEGY_NONE);
  grpc::ClientContext chat_context;
  auto reader = stub->Chat(&chat_context, chat);
  v1::ChatResponse response, last;
  while (reader->Read(&response)) last = response;
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(last.lore_entries_skipped(), 3);
  ASSERT_EQ(last.lore_size(), 2);
  EXPECT_EQ(last.lore(0).name(), "tide");
  EXPECT_EQ(last.lore(1).name(), "lamp");
}

// ---- inline sessions: idle expiry and their own cap ----

// A clock the test moves; read by the server's gRPC and worker threads.
class ManualClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(2'000'000'000);
};

TEST(InlineSessionLimitsTest, InlineSessionsExpireWhenIdleAndHaveTheirOwnCap) {
  testing::ScopedTempDir dir("inline_sessions");
  ManualClock clock;
  std::unique_ptr<Server> server = StartServer(dir.path().string(), [&clock](ServerOptions& options) {
    options.sessions.max_inline_sessions = 2;
    options.sessions.max_sessions = 2;
    options.sessions.inline_idle_ttl = absl::Hours(1);
    options.sessions.now = [&clock] { return clock.Now(); };
  });
  ASSERT_NE(server, nullptr);
  auto stub = v1::RolePlay::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                                                        grpc::InsecureChannelCredentials()));
  auto create_inline = [&](v1::Session* session) {
    v1::CreateSessionRequest request;
    request.mutable_character()->set_name("Lily");
    grpc::ClientContext context;
    return stub->CreateSession(&context, request, session);
  };
  v1::Session first, second, refused;
  ASSERT_TRUE(create_inline(&first).ok());
  ASSERT_TRUE(create_inline(&second).ok());
  const grpc::Status full = create_inline(&refused);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_NE(full.error_message().find("inline sessions"), std::string::npos) << full.error_message();

  // Durable sessions count against their own cap, not the inline one.
  v1::CreateCharacterRequest character_request;
  character_request.mutable_profile()->set_name("Keeper");
  v1::StoredCharacter character;
  grpc::ClientContext character_context;
  ASSERT_TRUE(stub->CreateCharacter(&character_context, character_request, &character).ok());
  v1::CreateSessionRequest durable_request;
  durable_request.set_character_id(character.character_id());
  v1::Session durable;
  grpc::ClientContext durable_context;
  const grpc::Status durable_status = stub->CreateSession(&durable_context, durable_request, &durable);
  EXPECT_TRUE(durable_status.ok()) << durable_status.error_message();

  clock.Advance(absl::Minutes(45));
  v1::GetSessionRequest get;
  get.set_session_id(second.session_id());
  v1::Session got;
  grpc::ClientContext get_context;
  ASSERT_TRUE(stub->GetSession(&get_context, get, &got).ok());  // `second` used; `first` idle
  clock.Advance(absl::Minutes(30));

  get.set_session_id(first.session_id());
  grpc::ClientContext expired_context;
  const grpc::Status expired = stub->GetSession(&expired_context, get, &got);
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::NOT_FOUND) << expired.error_message();
  v1::ChatRequest chat;
  chat.set_session_id(first.session_id());
  chat.set_message("hello");
  grpc::ClientContext chat_context;
  auto reader = stub->Chat(&chat_context, chat);
  v1::ChatResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  v1::Session third;
  const grpc::Status again = create_inline(&third);
  EXPECT_TRUE(again.ok()) << again.error_message();  // the expired session freed its place
  get.set_session_id(second.session_id());
  grpc::ClientContext kept_context;
  EXPECT_TRUE(stub->GetSession(&kept_context, get, &got).ok());
  get.set_session_id(durable.session_id());
  grpc::ClientContext durable_get_context;
  EXPECT_TRUE(stub->GetSession(&durable_get_context, get, &got).ok());  // durable ones never expire
}

}  // namespace
}  // namespace troupe
