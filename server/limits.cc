#include "server/limits.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "troupe/v1/character.pb.h"

namespace troupe {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status OverCap(const std::string& field, size_t size, const char* unit, size_t cap) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", size, " ", unit, "; the limit is ", cap));
}

// Every string and bytes field of `message`, at any depth, at most `cap` bytes. Protobuf
// already bounds the nesting of messages (100 levels) when it parses them.
absl::Status CheckStrings(const Message& message, const std::string& path, size_t cap) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  std::string scratch;
  for (const FieldDescriptor* f : fields) {
    const std::string name = absl::StrCat(path, ".", f->name());
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      if (!f->is_repeated()) {
        const size_t size = reflection->GetStringReference(message, f, &scratch).size();
        if (size > cap) return OverCap(name, size, "bytes", cap);
        continue;
      }
      for (int i = 0; i < reflection->FieldSize(message, f); ++i) {
        const size_t size = reflection->GetRepeatedStringReference(message, f, i, &scratch).size();
        if (size > cap) return OverCap(absl::StrCat(name, "[", i, "]"), size, "bytes", cap);
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!f->is_repeated()) {
        TROUPE_RETURN_IF_ERROR(CheckStrings(reflection->GetMessage(message, f), name, cap));
        continue;
      }
      for (int i = 0; i < reflection->FieldSize(message, f); ++i) {
        TROUPE_RETURN_IF_ERROR(CheckStrings(reflection->GetRepeatedMessage(message, f, i),
                                            absl::StrCat(name, "[", i, "]"), cap));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSetup(const v1::SessionSetup& setup) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(setup.user_name().size(), "setup.user_name", kMaxNameBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(setup.user_id().size(), "setup.user_id", kMaxNameBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(setup.user_persona().size(), "setup.user_persona", kMaxSetupTextBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(setup.scenario().size(), "setup.scenario", kMaxSetupTextBytes));
  return CheckBytes(setup.point_in_time().label().size(), "setup.point_in_time.label", kMaxNameBytes);
}

// Create and update carry the same oneof.
template <typename Request>
absl::Status CheckCharacterSource(const Request& request) {
  switch (request.source_case()) {
    case Request::kProfile:
      return CheckProfileLimits(request.profile(), "profile");
    case Request::kCardJson:
      return CheckBytes(request.card_json().size(), "card_json", kMaxCardBytes);
    case Request::kCardPng:
      return CheckBytes(request.card_png().size(), "card_png", kMaxCardPngBytes);
    default:
      return absl::OkStatus();  // the family answers "set one of ..."
  }
}

}  // namespace

RequestLimits RequestLimitsFor(const ModelInfo& model) {
  RequestLimits limits;
  const size_t context = static_cast<size_t>(std::max(model.max_model_len, 0));
  limits.max_prompt_bytes = std::max(kMinPromptCapBytes, kMaxPromptBytesPerToken * context);
  limits.max_prompt_token_ids = std::max(model.max_model_len, 0);
  return limits;
}

int MaxReceiveMessageBytes(const RequestLimits& limits) {
  // A token id takes at most 5 bytes as a packed varint (negative ids are refused later).
  const size_t token_ids_bytes = static_cast<size_t>(limits.max_prompt_token_ids) * 5;
  const size_t largest = std::max({kMaxCardPngBytes, kMaxProfileBytes, limits.max_prompt_bytes, token_ids_bytes});
  return static_cast<int>(std::min<size_t>(largest + kRequestOverheadBytes, size_t{1} << 30));
}

absl::Status CheckBytes(size_t size, const char* field, size_t cap) {
  if (size > cap) return OverCap(field, size, "bytes", cap);
  return absl::OkStatus();
}

absl::Status CheckLimits(const v1::GenerateRequest& request, const RequestLimits& limits) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.prompt().size(), "prompt", limits.max_prompt_bytes));
  if (request.prompt_token_ids_size() > limits.max_prompt_token_ids) {
    return OverCap("prompt_token_ids", request.prompt_token_ids_size(), "ids",
                   limits.max_prompt_token_ids);
  }
  if (request.messages_size() > kMaxGenerateMessages) {
    return OverCap("messages", request.messages_size(), "entries", kMaxGenerateMessages);
  }
  size_t message_bytes = 0;
  for (const v1::PromptMessage& message : request.messages()) message_bytes += message.content().size();
  TROUPE_RETURN_IF_ERROR(CheckBytes(message_bytes, "messages[].content", limits.max_prompt_bytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.user_name().size(), "user_name", kMaxNameBytes));
  return CheckBytes(request.cache_salt().size(), "cache_salt", kMaxCacheSaltBytes);
}

absl::Status CheckLimits(const v1::ChatRequest& request) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.session_id().size(), "session_id", kMaxIdBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.message().size(), "message", kMaxChatMessageBytes));
  return CheckBytes(request.cache_salt().size(), "cache_salt", kMaxCacheSaltBytes);
}

absl::Status CheckLimits(const v1::CreateSessionRequest& request) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character().name().size(), "character.name", kMaxNameBytes));
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character().system_prompt().size(), "character.system_prompt",
                                    kMaxInlineSystemPromptBytes));
  return CheckSetup(request.setup());
}

absl::Status CheckLimits(const v1::GetSessionRequest& request) {
  return CheckBytes(request.session_id().size(), "session_id", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::ListSessionsRequest& request) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes));
  return CheckBytes(request.page_token().size(), "page_token", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::DeleteSessionRequest& request) {
  return CheckBytes(request.session_id().size(), "session_id", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::CreateCharacterRequest& request) { return CheckCharacterSource(request); }

absl::Status CheckLimits(const v1::UpdateCharacterRequest& request) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes));
  return CheckCharacterSource(request);
}

absl::Status CheckLimits(const v1::GetCharacterRequest& request) {
  return CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::ListCharactersRequest& request) {
  return CheckBytes(request.page_token().size(), "page_token", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::DeleteCharacterRequest& request) {
  return CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes);
}

absl::Status CheckLimits(const v1::ExportCharacterRequest& request) {
  return CheckBytes(request.character_id().size(), "character_id", kMaxIdBytes);
}

absl::Status CheckProfileLimits(const v1::CharacterProfile& profile, const char* field) {
  TROUPE_RETURN_IF_ERROR(CheckBytes(profile.ByteSizeLong(), field, kMaxProfileBytes));
  return CheckStrings(profile, field, kMaxCardTextBytes);
}

}  // namespace troupe
