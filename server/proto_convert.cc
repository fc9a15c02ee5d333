#include "server/proto_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/character_convert.h"

namespace troupe {
namespace {
constexpr int kMaxTopLogprobs = 20;
constexpr char kServerVersion[] = "0.1.0";
}  // namespace

absl::StatusOr<SamplingParams> SamplingFromProto(const v1::SamplingParams& proto) {
  SamplingParams params;
  if (proto.has_temperature()) params.temperature = proto.temperature();
  if (proto.has_top_k()) params.top_k = proto.top_k();
  if (proto.has_top_p()) params.top_p = proto.top_p();
  if (proto.has_min_p()) params.min_p = proto.min_p();
  if (proto.has_repetition_penalty()) params.repetition_penalty = proto.repetition_penalty();
  if (proto.has_presence_penalty()) params.presence_penalty = proto.presence_penalty();
  if (proto.has_frequency_penalty()) params.frequency_penalty = proto.frequency_penalty();
  if (proto.has_penalty_last_n()) params.penalty_last_n = proto.penalty_last_n();
  if (proto.has_seed()) params.seed = proto.seed();
  if (proto.has_max_tokens()) params.max_tokens = proto.max_tokens();
  params.stop.assign(proto.stop().begin(), proto.stop().end());
  params.ignore_eos = proto.ignore_eos();

  if (proto.top_logprobs() < 0 || proto.top_logprobs() > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_logprobs must be in 0..",
                                                   kMaxTopLogprobs, ", got ",
                                                   proto.top_logprobs()));
  }
  if (proto.top_logprobs() > 0 && !proto.logprobs()) {
    return absl::InvalidArgumentError("sampling.top_logprobs needs sampling.logprobs=true");
  }
  params.logprobs = proto.logprobs() ? proto.top_logprobs() : -1;
  for (const std::string& stop : params.stop) {
    if (stop.empty()) return absl::InvalidArgumentError("sampling.stop has an empty string");
  }
  if (absl::Status status = ValidateSamplingParams(params); !status.ok()) return status;
  return params;
}

v1::FinishReason FinishReasonToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
    case FinishReason::kError: break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

v1::Role RoleToProto(const std::string& role) {
  if (role == "system") return v1::ROLE_SYSTEM;
  if (role == "user") return v1::ROLE_USER;
  if (role == "assistant") return v1::ROLE_ASSISTANT;
  return v1::ROLE_UNSPECIFIED;
}

Character CharacterFromProto(const v1::Character& proto) {
  return Character{proto.name(), proto.system_prompt()};
}

void SessionToProto(const Session& session, v1::Session* proto) {
  proto->set_session_id(session.id);
  proto->mutable_character()->set_name(session.character.name);
  proto->mutable_character()->set_system_prompt(session.character.system_prompt);
  for (const ChatMessage& message : session.history) {
    v1::ChatMessage* out = proto->add_history();
    out->set_role(RoleToProto(message.role));
    out->set_content(message.content);
  }
  proto->set_create_time_unix_micros(absl::ToUnixMicros(session.create_time));
  if (!session.character_id.empty()) {
    proto->set_character_id(session.character_id);
    SessionSetupToProto(session.setup, proto->mutable_setup());
    EmotionToProto(session.mood, proto->mutable_mood());
  }
}

void ModelInfoToProto(const ModelInfo& info, v1::ServerInfo* proto) {
  proto->set_model_name(info.name);
  proto->set_architecture(info.architecture);
  proto->set_context_length(info.max_model_len);
  proto->set_vocab_size(info.vocab_size);
  proto->set_chat_family(std::string(ChatFamilyName(info.chat_family)));
  proto->set_num_parameters(info.num_parameters);
  proto->set_server_version(kServerVersion);
}

}  // namespace troupe
