#include "server/character_service.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/log.h"
#include "engine/character/card_png.h"
#include "engine/character/character_card.h"
#include "server/proto_convert.h"
#include "server/rpc_util.h"

namespace troupe {
namespace {

// A 1x1 grey PNG that exported cards are embedded in.
constexpr unsigned char kBlankPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x68, 0x00, 0x00, 0x00,
    0x82, 0x00, 0x81, 0x77, 0xcd, 0x72, 0xb6, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82};

}  // namespace

CharacterService::CharacterService(WorkQueue& prepare_queue, CharacterRegistry* characters,
                                   MemoryService* memory)
    : prepare_queue_(prepare_queue), characters_(characters), memory_(memory) {}

grpc::ServerUnaryReactor* CharacterService::CreateCharacter(grpc::CallbackServerContext* context,
                                                            const Caller& caller,
                                                            const v1::CreateCharacterRequest* request,
                                                            v1::StoredCharacter* response) {
  // The handlers run after this returns: they capture the tenant by value, never `caller`.
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    absl::StatusOr<CharacterProfile> profile = ProfileFromRequest(*request);
    if (!profile.ok()) return profile.status();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> created =
        characters_->Create(tenant, *std::move(profile));
    if (!created.ok()) return created.status();
    StoredCharacterToProto(**created, response);
    IndexExperiences(**created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CharacterService::GetCharacter(grpc::CallbackServerContext* context,
                                                         const Caller& caller,
                                                         const v1::GetCharacterRequest* request,
                                                         v1::StoredCharacter* response) {
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> c = characters_->Get(tenant, request->character_id());
    if (c.ok()) StoredCharacterToProto(**c, response);
    return c.status();
  });
}

grpc::ServerUnaryReactor* CharacterService::ListCharacters(grpc::CallbackServerContext* context,
                                                           const Caller& caller,
                                                           const v1::ListCharactersRequest* request,
                                                           v1::ListCharactersResponse* response) {
  if (absl::Status valid = ValidatePageSize(request->page_size()); !valid.ok()) return FinishUnary(context, valid);
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    const int limit = PageLimit(request->page_size());
    absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> list =
        characters_->List(tenant, request->page_token(), limit);
    if (!list.ok()) return list.status();
    for (const auto& c : *list) StoredCharacterToProto(*c, response->add_characters());
    if (static_cast<int>(list->size()) == limit) response->set_next_page_token(list->back()->id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CharacterService::UpdateCharacter(grpc::CallbackServerContext* context,
                                                            const Caller& caller,
                                                            const v1::UpdateCharacterRequest* request,
                                                            v1::StoredCharacter* response) {
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    absl::StatusOr<CharacterProfile> profile = ProfileFromRequest(*request);
    if (!profile.ok()) return profile.status();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> updated =
        characters_->Update(tenant, request->character_id(), *std::move(profile));
    if (!updated.ok()) return updated.status();
    StoredCharacterToProto(**updated, response);
    IndexExperiences(**updated);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CharacterService::DeleteCharacter(grpc::CallbackServerContext* context,
                                                            const Caller& caller,
                                                            const v1::DeleteCharacterRequest* request,
                                                            v1::DeleteCharacterResponse* /*response*/) {
  return RunUnary(context, prepare_queue_, [this, request, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    return characters_->Delete(tenant, request->character_id());
  });
}

grpc::ServerUnaryReactor* CharacterService::ExportCharacter(grpc::CallbackServerContext* context,
                                                            const Caller& caller,
                                                            const v1::ExportCharacterRequest* request,
                                                            v1::ExportCharacterResponse* response) {
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    if (characters_ == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> c = characters_->Get(tenant, request->character_id());
    if (!c.ok()) return c.status();
    const CharacterProfile& profile = (*c)->profile;
    const CardSpec spec = request->spec() == v1::CARD_SPEC_V2 ? CardSpec::kV2 : CardSpec::kV3;
    if (!request->png()) {
      response->set_card(ToCharacterCardJson(profile, spec));
      response->set_content_type("application/json");
      return absl::OkStatus();
    }
    CardPngText text;
    text.chara_json = ToCharacterCardJson(profile, CardSpec::kV2);
    if (spec == CardSpec::kV3) text.ccv3_json = ToCharacterCardJson(profile, CardSpec::kV3);
    absl::StatusOr<std::string> png = WriteCardToPng(
        std::string_view(reinterpret_cast<const char*>(kBlankPng), sizeof(kBlankPng)), text);
    if (!png.ok()) return png.status();
    response->set_card(*std::move(png));
    response->set_content_type("image/png");
    return absl::OkStatus();
  });
}

void CharacterService::IndexExperiences(const StoredCharacter& character) {
  if (memory_ == nullptr) return;
  std::vector<MemoryService::Experience> experiences;
  for (const Experience& e : character.profile.experiences) {
    experiences.push_back({.text = e.text,
                           .story_time = e.when ? std::optional<int64_t>(e.when->ordinal) : std::nullopt,
                           .emotion = e.emotion});
  }
  // Rating experiences goes through the engine: on the memory writer, off the RPC's path.
  const absl::Status queued =
      memory_->QueueCharacterExperiences(character.tenant, character.id, std::move(experiences));
  if (!queued.ok()) TROUPE_LOG_WARNING("experiences not indexed: %s", queued.ToString().c_str());
}

}  // namespace troupe
