// Fuzzes request validation (server/proto_convert, server/rpc_util): the first byte picks a
// troupe.v1 request message, the rest is its serialized bytes as a client would send them.
// What parses goes through the same checks and conversions, in the same order, as the RPC
// that receives it (generation_service.cc, session_service.cc, character_service.cc). What a
// conversion accepts must survive the way back: a profile or session setup written to proto
// and read again is accepted again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/check.h"
#include "engine/sampler/sampling_preset.h"
#include "server/proto_convert.h"
#include "server/rpc_util.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {
namespace {

template <typename Message>
bool Parse(const uint8_t* data, size_t size, Message* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

void CheckProfileRoundTrip(const CharacterProfile& profile) {
  v1::CharacterProfile proto;
  ProfileToProto(profile, &proto);
  absl::StatusOr<CharacterProfile> back = ProfileFromProto(proto);
  TROUPE_CHECK_MSG(back.ok(), "an accepted profile is refused after ProfileToProto: %s",
                   std::string(back.status().message()).c_str());
  v1::StoredCharacter stored_proto;
  StoredCharacterToProto(StoredCharacter{.id = "c", .profile = *back}, &stored_proto);
}

void CheckGenerate(const uint8_t* data, size_t size) {
  v1::GenerateRequest request;
  if (!Parse(data, size, &request)) return;
  if (!request.prompt().empty()) (void)ValidateText(request.prompt(), "prompt");
  (void)SamplingFromProto(request.sampling(), SamplingParams());
}

void CheckChat(const uint8_t* data, size_t size) {
  v1::ChatRequest request;
  if (!Parse(data, size, &request)) return;
  (void)ValidateText(request.message(), "message");
  (void)SamplingFromProto(request.sampling(), ChatSamplingPreset());
  (void)MemoryOptionsFromProto(request.memory());
  if (request.memory().has_turn_emotion()) {
    (void)EmotionFromProto(request.memory().turn_emotion(), "memory.turn_emotion");
  }
}

template <typename Request>
void CheckCharacterRequest(const uint8_t* data, size_t size) {
  Request request;
  if (!Parse(data, size, &request)) return;
  absl::StatusOr<CharacterProfile> profile = ProfileFromRequest(request);
  if (profile.ok()) CheckProfileRoundTrip(*profile);
}

void CheckCreateSession(const uint8_t* data, size_t size) {
  v1::CreateSessionRequest request;
  if (!Parse(data, size, &request)) return;
  (void)CharacterFromProto(request.character());
  absl::StatusOr<SessionSetup> setup = SessionSetupFromProto(request.setup(), request.has_setup());
  if (!setup.ok()) return;
  v1::SessionSetup proto;
  SessionSetupToProto(*setup, &proto);
  absl::StatusOr<SessionSetup> back = SessionSetupFromProto(proto, /*has_setup=*/true);
  TROUPE_CHECK_MSG(back.ok(), "an accepted setup is refused after SessionSetupToProto: %s",
                   std::string(back.status().message()).c_str());
}

template <typename Request>
void CheckList(const uint8_t* data, size_t size) {
  Request request;
  if (!Parse(data, size, &request)) return;
  if (ValidatePageSize(request.page_size()).ok()) {
    const int limit = PageLimit(request.page_size());
    TROUPE_CHECK(limit >= 1 && limit <= 1000);
  }
}

}  // namespace
}  // namespace troupe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t kind = data[0];
  ++data;
  --size;
  switch (kind % 7) {
    case 0: troupe::CheckGenerate(data, size); break;
    case 1: troupe::CheckChat(data, size); break;
    case 2: troupe::CheckCharacterRequest<troupe::v1::CreateCharacterRequest>(data, size); break;
    case 3: troupe::CheckCharacterRequest<troupe::v1::UpdateCharacterRequest>(data, size); break;
    case 4: troupe::CheckCreateSession(data, size); break;
    case 5: troupe::CheckList<troupe::v1::ListSessionsRequest>(data, size); break;
    case 6: troupe::CheckList<troupe::v1::ListCharactersRequest>(data, size); break;
  }
  return 0;
}
