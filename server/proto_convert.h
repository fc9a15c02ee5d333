// Conversions between troupe.v1 messages and engine types, with the request-field validation
// that belongs to the transport. Pure functions; safe from any thread.
#pragma once

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/request/request.h"
#include "engine/sampler/sampling_params.h"
#include "engine/session/session_store.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// Unset optional fields keep the engine defaults. kInvalidArgument names the field and its
// allowed values (top_logprobs without logprobs, top_logprobs outside 0..20, and whatever
// ValidateSamplingParams rejects).
[[nodiscard]] absl::StatusOr<SamplingParams> SamplingFromProto(const v1::SamplingParams& proto);

// kNone and kError have no proto value (errors end the RPC with a status) and map to
// FINISH_REASON_UNSPECIFIED.
v1::FinishReason FinishReasonToProto(FinishReason reason);

v1::Role RoleToProto(const std::string& role);  // "user" -> ROLE_USER, ...

Character CharacterFromProto(const v1::Character& proto);
void SessionToProto(const Session& session, v1::Session* proto);
void ModelInfoToProto(const ModelInfo& info, v1::ServerInfo* proto);

}  // namespace troupe
