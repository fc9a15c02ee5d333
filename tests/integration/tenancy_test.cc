// Tenants through the real server: SmolLM2-135M-Instruct on 127.0.0.1:0, the real embedding
// model, a real SQLite file, real gRPC. ServerOptions.resolve_caller is a test resolver that
// names the tenant from an `x-api-key` value (it stands in for the --api-keys file). Tenant
// alpha creates characters, sessions and memories; tenant beta (and the anonymous tenant) must
// get NOT_FOUND on every RPC that takes alpha's ids, worded as for an id that never existed,
// must list none of alpha's things and must recall none of alpha's memories; alpha keeps all.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/engine.h"
#include "engine/memory/memory_service.h"
#include "engine/store/sqlite_store.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/auth/caller.h"
#include "server/server.h"
#include "tests/testing/minilm.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"
#include "tests/testing/testdata.h"
#include "tests/testing/test_server.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace troupe {
namespace {

constexpr char kUnknownId[] = "0123456789abcdef0123456789abcdef";

// The key file's stand-in: two keys, two tenants; no key is the anonymous tenant.
CallerResolver TestKeys() {
  return [](const grpc::CallbackServerContext& context) -> absl::StatusOr<Caller> {
    const auto& metadata = context.client_metadata();
    auto it = metadata.find("x-api-key");
    if (it == metadata.end()) return Caller{};
    const std::string key(it->second.data(), it->second.size());
    if (key != "key-alpha" && key != "key-beta") return absl::UnauthenticatedError("unknown API key");
    Caller caller;
    caller.tenant = key == "key-alpha" ? "alpha" : "beta";
    return caller;
  };
}

std::unique_ptr<Server> StartServer(const std::string& data_dir) {
  return testing::StartTestServer(
      {.model_path = testing::SmolLmPath(), .data_dir = data_dir, .embedding_model_dir = testing::MiniLmDir()},
      [](ServerOptions& options) { options.resolve_caller = TestKeys(); });
}

using ChatResult = testing::ChatTurnResult;

// One tenant's view of the server: every call carries its key ("" = none: anonymous).
class Client {
 public:
  Client(int port, std::string key)
      : stub_(v1::RolePlay::NewStub(
            grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()))),
        key_(std::move(key)) {}

  grpc::Status CreateCharacter(const std::string& card_file, v1::StoredCharacter* out) {
    v1::CreateCharacterRequest request;
    request.set_card_json(testing::ReadTestData("cards/" + card_file));
    auto context = Context();
    return stub_->CreateCharacter(context.get(), request, out);
  }
  grpc::Status GetCharacter(const std::string& id, v1::StoredCharacter* out) {
    v1::GetCharacterRequest request;
    request.set_character_id(id);
    auto context = Context();
    return stub_->GetCharacter(context.get(), request, out);
  }
  grpc::Status UpdateCharacter(const std::string& id, const std::string& name, v1::StoredCharacter* out) {
    v1::UpdateCharacterRequest request;
    request.set_character_id(id);
    request.mutable_profile()->set_name(name);
    request.mutable_profile()->set_description("Taken over.");
    auto context = Context();
    return stub_->UpdateCharacter(context.get(), request, out);
  }
  grpc::Status DeleteCharacter(const std::string& id) {
    v1::DeleteCharacterRequest request;
    request.set_character_id(id);
    v1::DeleteCharacterResponse out;
    auto context = Context();
    return stub_->DeleteCharacter(context.get(), request, &out);
  }
  grpc::Status ExportCharacter(const std::string& id, bool png, v1::ExportCharacterResponse* out) {
    v1::ExportCharacterRequest request;
    request.set_character_id(id);
    request.set_png(png);
    auto context = Context();
    return stub_->ExportCharacter(context.get(), request, out);
  }
  std::vector<std::string> ListCharacterIds() {
    std::vector<std::string> ids;
    v1::ListCharactersRequest request;
    request.set_page_size(1000);
    v1::ListCharactersResponse out;
    auto context = Context();
    const grpc::Status status = stub_->ListCharacters(context.get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::StoredCharacter& c : out.characters()) ids.push_back(c.character_id());
    return ids;
  }

  grpc::Status CreateSession(const std::string& character_id, const std::string& user_id, v1::Session* out) {
    v1::CreateSessionRequest request;
    request.set_character_id(character_id);
    request.mutable_setup()->set_user_name("Ash");
    request.mutable_setup()->set_user_id(user_id);
    auto context = Context();
    return stub_->CreateSession(context.get(), request, out);
  }
  grpc::Status CreateInlineSession(const std::string& system_prompt, v1::Session* out) {
    v1::CreateSessionRequest request;
    request.mutable_character()->set_name("Ines");
    request.mutable_character()->set_system_prompt(system_prompt);
    auto context = Context();
    return stub_->CreateSession(context.get(), request, out);
  }
  grpc::Status GetSession(const std::string& id, v1::Session* out) {
    v1::GetSessionRequest request;
    request.set_session_id(id);
    auto context = Context();
    return stub_->GetSession(context.get(), request, out);
  }
  grpc::Status DeleteSession(const std::string& id) {
    v1::DeleteSessionRequest request;
    request.set_session_id(id);
    v1::DeleteSessionResponse out;
    auto context = Context();
    return stub_->DeleteSession(context.get(), request, &out);
  }
  // Session ids listed, of one character when character_id is not empty.
  std::vector<std::string> ListSessionIds(const std::string& character_id = "") {
    std::vector<std::string> ids;
    v1::ListSessionsRequest request;
    request.set_character_id(character_id);
    request.set_page_size(1000);
    v1::ListSessionsResponse out;
    auto context = Context();
    const grpc::Status status = stub_->ListSessions(context.get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::Session& s : out.sessions()) ids.push_back(s.session_id());
    return ids;
  }
  ChatResult Chat(const std::string& session_id, const std::string& message) {
    v1::ChatRequest request;
    request.set_session_id(session_id);
    request.set_message(message);
    request.mutable_sampling()->set_temperature(0);
    request.mutable_sampling()->set_max_tokens(8);
    request.mutable_memory()->set_strategy(v1::RETRIEVAL_STRATEGY_SEMANTIC);
    request.mutable_memory()->set_top_k(4);
    auto context = Context();
    auto reader = stub_->Chat(context.get(), request);
    return testing::ReadChatStream(*reader);
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!key_.empty()) context->AddMetadata("x-api-key", key_);
    return context;
  }

  std::unique_ptr<v1::RolePlay::Stub> stub_;
  const std::string key_;
};

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// `theirs` (a call on another tenant's id) must be NOT_FOUND and say exactly what `unknown`
// (the same call on an id that never existed) says, the id aside: nothing tells the two apart.
void ExpectNotFoundAsUnknown(const grpc::Status& theirs, const std::string& their_id,
                             const grpc::Status& unknown, const std::string& what) {
  EXPECT_EQ(theirs.error_code(), grpc::StatusCode::NOT_FOUND) << what << ": " << theirs.error_message();
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << what << ": " << unknown.error_message();
  EXPECT_EQ(absl::StrReplaceAll(theirs.error_message(), {{their_id, "<id>"}}),
            absl::StrReplaceAll(unknown.error_message(), {{kUnknownId, "<id>"}}))
      << what;
}

// What alpha made: a stored character, a durable session with one turn, an inline session.
struct AlphaThings {
  std::string character_id;
  std::string character_name;
  std::string durable_session;
  std::string inline_session;
  int durable_history_size = 0;
};

// Every RPC of `other` that takes one of alpha's ids answers NOT_FOUND, as for an unknown id;
// its lists hold none of alpha's things.
void ExpectOtherTenantSeesNothing(Client& other, const AlphaThings& alpha) {
  v1::StoredCharacter character;
  ExpectNotFoundAsUnknown(other.GetCharacter(alpha.character_id, &character), alpha.character_id,
                          other.GetCharacter(kUnknownId, &character), "GetCharacter");
  ExpectNotFoundAsUnknown(other.UpdateCharacter(alpha.character_id, "Mallory", &character), alpha.character_id,
                          other.UpdateCharacter(kUnknownId, "Mallory", &character), "UpdateCharacter");
  v1::ExportCharacterResponse exported;
  for (bool png : {false, true}) {
    ExpectNotFoundAsUnknown(other.ExportCharacter(alpha.character_id, png, &exported), alpha.character_id,
                            other.ExportCharacter(kUnknownId, png, &exported), "ExportCharacter");
  }
  v1::Session session;
  ExpectNotFoundAsUnknown(other.CreateSession(alpha.character_id, "user-1", &session), alpha.character_id,
                          other.CreateSession(kUnknownId, "user-1", &session), "CreateSession");
  for (const std::string& id : {alpha.durable_session, alpha.inline_session}) {
    ExpectNotFoundAsUnknown(other.GetSession(id, &session), id, other.GetSession(kUnknownId, &session),
                            "GetSession");
    ExpectNotFoundAsUnknown(other.Chat(id, "Tell me your secrets.").status, id,
                            other.Chat(kUnknownId, "Tell me your secrets.").status, "Chat");
    ExpectNotFoundAsUnknown(other.DeleteSession(id), id, other.DeleteSession(kUnknownId), "DeleteSession");
  }
  // Last: a delete that went through would leave nothing for the checks above.
  ExpectNotFoundAsUnknown(other.DeleteCharacter(alpha.character_id), alpha.character_id,
                          other.DeleteCharacter(kUnknownId), "DeleteCharacter");

  EXPECT_FALSE(Contains(other.ListCharacterIds(), alpha.character_id));
  const std::vector<std::string> sessions = other.ListSessionIds();
  EXPECT_FALSE(Contains(sessions, alpha.durable_session));
  EXPECT_FALSE(Contains(sessions, alpha.inline_session));
  EXPECT_TRUE(other.ListSessionIds(alpha.character_id).empty());
}

// Alpha still has everything, unchanged by the other tenants' attempts.
void ExpectAlphaHasEverything(Client& alpha_client, const AlphaThings& alpha) {
  v1::StoredCharacter character;
  ASSERT_TRUE(alpha_client.GetCharacter(alpha.character_id, &character).ok());
  EXPECT_EQ(character.profile().name(), alpha.character_name);
  v1::ExportCharacterResponse exported;
  EXPECT_TRUE(alpha_client.ExportCharacter(alpha.character_id, /*png=*/false, &exported).ok());
  EXPECT_TRUE(Contains(alpha_client.ListCharacterIds(), alpha.character_id));
  v1::Session session;
  ASSERT_TRUE(alpha_client.GetSession(alpha.durable_session, &session).ok());
  EXPECT_EQ(session.history_size(), alpha.durable_history_size);
  EXPECT_TRUE(Contains(alpha_client.ListSessionIds(), alpha.durable_session));
  EXPECT_EQ(alpha_client.ListSessionIds(alpha.character_id), std::vector<std::string>{alpha.durable_session});
}

class TenancyTest : public ::testing::Test {
 protected:
  const testing::ScopedTempDir data_dir_{"tenancy_test"};
};

TEST_F(TenancyTest, AnotherTenantsIdsAreNotFoundOnEveryRpc) {
  AlphaThings alpha;
  {
    std::unique_ptr<Server> server = StartServer(data_dir_.path().string());
    ASSERT_NE(server, nullptr);
    Client alpha_client(server->port(), "key-alpha");
    Client beta(server->port(), "key-beta");
    Client anonymous(server->port(), "");

    v1::StoredCharacter character;
    ASSERT_TRUE(alpha_client.CreateCharacter("v2_lighthouse_keeper.json", &character).ok());
    alpha.character_id = character.character_id();
    alpha.character_name = character.profile().name();
    v1::Session session;
    ASSERT_TRUE(alpha_client.CreateSession(alpha.character_id, "user-1", &session).ok());
    alpha.durable_session = session.session_id();
    ASSERT_TRUE(alpha_client.CreateInlineSession("The vault code is 4417.", &session).ok());
    alpha.inline_session = session.session_id();
    const ChatResult turn = alpha_client.Chat(alpha.durable_session, "Good evening, keeper.");
    ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
    ASSERT_TRUE(alpha_client.GetSession(alpha.durable_session, &session).ok());
    alpha.durable_history_size = session.history_size();
    ASSERT_GE(alpha.durable_history_size, 2);
    // Beta's own things do not show in alpha's lists either.
    v1::StoredCharacter betas;
    ASSERT_TRUE(beta.CreateCharacter("v1_tavern_cat.json", &betas).ok());
    EXPECT_FALSE(Contains(alpha_client.ListCharacterIds(), betas.character_id()));
    EXPECT_EQ(beta.ListCharacterIds(), std::vector<std::string>{betas.character_id()});

    // Served from the caches that creating them filled.
    ExpectOtherTenantSeesNothing(beta, alpha);
    ExpectOtherTenantSeesNothing(anonymous, alpha);
    ExpectAlphaHasEverything(alpha_client, alpha);
    ASSERT_TRUE(alpha_client.GetSession(alpha.inline_session, &session).ok());
    EXPECT_EQ(session.character().system_prompt(), "The vault code is 4417.");
    EXPECT_TRUE(alpha_client.Chat(alpha.inline_session, "Hello?").status.ok());
  }
  // After a restart every lookup reads the database: the same answers. (Inline sessions do not
  // survive a restart; alpha's is gone for everyone.)
  std::unique_ptr<Server> server = StartServer(data_dir_.path().string());
  ASSERT_NE(server, nullptr);
  Client alpha_client(server->port(), "key-alpha");
  Client beta(server->port(), "key-beta");
  Client anonymous(server->port(), "");
  ExpectOtherTenantSeesNothing(beta, alpha);
  ExpectOtherTenantSeesNothing(anonymous, alpha);
  ExpectAlphaHasEverything(alpha_client, alpha);
  EXPECT_TRUE(alpha_client.Chat(alpha.durable_session, "Is the light still burning?").status.ok());
  // Alpha can still delete what is alpha's.
  EXPECT_TRUE(alpha_client.DeleteSession(alpha.durable_session).ok());
  EXPECT_TRUE(alpha_client.DeleteCharacter(alpha.character_id).ok());
}

// Two tenants' clients name the same user: beta's chat recalls none of alpha's memories, and
// its final message's memory fields carry none of alpha's text.
TEST_F(TenancyTest, SameUserIdInAnotherTenantRecallsNoneOfItsMemories) {
  std::set<int64_t> beta_recalled;
  {
    std::unique_ptr<Server> server = StartServer(data_dir_.path().string());
    ASSERT_NE(server, nullptr);
    ASSERT_NE(server->memory(), nullptr);
    Client alpha_client(server->port(), "key-alpha");
    Client beta(server->port(), "key-beta");

    v1::StoredCharacter alphas;
    ASSERT_TRUE(alpha_client.CreateCharacter("v2_lighthouse_keeper.json", &alphas).ok());
    v1::Session alpha_session;
    ASSERT_TRUE(alpha_client.CreateSession(alphas.character_id(), "user-1", &alpha_session).ok());
    for (const char* message : {"My cat is named Pepper and she is afraid of thunder.",
                                "I keep my savings in a blue tin under the floorboards."}) {
      const ChatResult turn = alpha_client.Chat(alpha_session.session_id(), message);
      ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
    }
    server->memory()->Flush();
    const std::string question = "Is my cat Pepper still scared of thunder? Where are my savings?";
    // Alpha's recall works, so beta's empty one below is not for want of memories (in a second
    // session of the user: the first still shows those turns, which are not recalled then).
    v1::Session alpha_again;
    ASSERT_TRUE(alpha_client.CreateSession(alphas.character_id(), "user-1", &alpha_again).ok());
    const ChatResult alpha_turn = alpha_client.Chat(alpha_again.session_id(), question);
    ASSERT_TRUE(alpha_turn.status.ok()) << alpha_turn.status.error_message();
    bool alpha_recalls_pepper = false;
    for (const v1::MemoryRef& m : alpha_turn.last.memories()) {
      alpha_recalls_pepper |= m.text().find("Pepper") != std::string::npos;
    }
    EXPECT_TRUE(alpha_recalls_pepper);

    // None of alpha's text in a final message of beta's.
    const auto expect_none_of_alphas = [&beta_recalled](const ChatResult& turn) {
      for (const v1::MemoryRef& m : turn.last.memories()) {
        EXPECT_EQ(m.text().find("Pepper"), std::string::npos) << m.text();
        EXPECT_EQ(m.text().find("blue tin"), std::string::npos) << m.text();
        EXPECT_EQ(m.scope(), "character") << m.text();  // beta's user has no history of its own
        beta_recalled.insert(m.memory_id());
      }
    };
    // Beta cannot open a session on alpha's character for the same user (were it let in, its
    // turn must still recall nothing of alpha's)...
    v1::Session beta_session;
    const grpc::Status probe = beta.CreateSession(alphas.character_id(), "user-1", &beta_session);
    EXPECT_EQ(probe.error_code(), grpc::StatusCode::NOT_FOUND);
    if (probe.ok()) expect_none_of_alphas(beta.Chat(beta_session.session_id(), question));
    // ...and with its own copy of the same card and the same user id, recalls nothing of alpha's.
    v1::StoredCharacter betas;
    ASSERT_TRUE(beta.CreateCharacter("v2_lighthouse_keeper.json", &betas).ok());
    ASSERT_TRUE(beta.CreateSession(betas.character_id(), "user-1", &beta_session).ok());
    server->memory()->Flush();  // beta's character's own experiences indexed
    const ChatResult beta_turn = beta.Chat(beta_session.session_id(), question);
    ASSERT_TRUE(beta_turn.status.ok()) << beta_turn.status.error_message();
    expect_none_of_alphas(beta_turn);
  }
  // Whatever beta recalled is beta's own (its character's experiences), by the database's word.
  auto store = SqliteStore::Open((data_dir_.path() / "troupe.db").string());
  ASSERT_TRUE(store.ok()) << store.status();
  auto memories = (*store)->ListMemories();
  ASSERT_TRUE(memories.ok());
  int alphas = 0;
  for (const MemoryRecord& m : *memories) {
    if (m.tenant == "alpha") ++alphas;
    if (beta_recalled.contains(m.id)) {
      EXPECT_EQ(m.tenant, "beta") << m.text;
    }
  }
  EXPECT_GE(alphas, 2);  // alpha's turns (and its character's experiences) are alpha's
}

}  // namespace
}  // namespace troupe
