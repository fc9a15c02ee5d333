#include "server/generation_service.h"

#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/character/character_card.h"
#include "engine/sampler/sampling_params.h"
#include "engine/session/prompt_builder.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/generate_reactor.h"
#include "server/proto_convert.h"
#include "server/rpc_util.h"

namespace troupe {
namespace {

// Everything a Generate job needs, copied out of the request in the reaction.
struct GenerateJob {
  std::string prompt;
  std::vector<TokenId> prompt_token_ids;
  std::vector<ChatMessage> messages;  // a conversation to render with the chat template
  std::string character_id;           // with messages: chat as this stored character
  std::string user_name;
  bool add_special_tokens = true;
  bool parse_special = true;
  Request request;  // sampling, priority and arrival_time set; prompt filled later
};

absl::Status ValidateMessages(const v1::GenerateRequest& proto, GenerateJob& job) {
  job.messages.reserve(proto.messages_size());
  for (int i = 0; i < proto.messages_size(); ++i) {
    const v1::PromptMessage& message = proto.messages(i);
    const char* role = RoleFromProto(message.role());
    if (role == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT"));
    }
    if (!IsValidUtf8(message.content())) {  // empty is fine: OpenAI accepts placeholder messages
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].content is not valid UTF-8"));
    }
    job.messages.push_back(ChatMessage{role, message.content()});
  }
  if (!proto.character_id().empty()) {
    if (!proto.user_name().empty()) {
      if (absl::Status status = ValidateText(proto.user_name(), "user_name"); !status.ok()) return status;
    }
    job.character_id = proto.character_id();
    job.user_name = proto.user_name();
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerateJob> ValidateGenerate(const v1::GenerateRequest& proto) {
  const int forms = (proto.prompt().empty() ? 0 : 1) + (proto.prompt_token_ids_size() > 0 ? 1 : 0) +
                    (proto.messages_size() > 0 ? 1 : 0);
  if (forms == 0) {
    return absl::InvalidArgumentError("prompt is empty (set prompt, prompt_token_ids or messages)");
  }
  if (forms > 1) {
    return absl::InvalidArgumentError("set one of prompt, prompt_token_ids and messages, not several");
  }
  if (proto.messages_size() == 0 && (!proto.character_id().empty() || !proto.user_name().empty())) {
    return absl::InvalidArgumentError("character_id and user_name need messages");
  }
  if (!proto.prompt().empty()) {
    if (absl::Status status = ValidateText(proto.prompt(), "prompt"); !status.ok()) return status;
  }
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(proto.sampling(), SamplingParams());
  if (!sampling.ok()) return sampling.status();

  GenerateJob job;
  if (absl::Status status = ValidateMessages(proto, job); !status.ok()) return status;
  job.prompt = proto.prompt();
  job.prompt_token_ids.assign(proto.prompt_token_ids().begin(), proto.prompt_token_ids().end());
  job.add_special_tokens = !proto.has_add_special_tokens() || proto.add_special_tokens();
  job.parse_special = !proto.has_parse_special() || proto.parse_special();
  job.request.sampling = *std::move(sampling);
  job.request.priority = proto.priority();
  job.request.arrival_time = absl::Now();  // TTFT includes tokenization, as in vLLM
  return job;
}

// Renders job.messages (after the stored character's preamble when job.character_id is set)
// with the model's chat template into job.request.prompt, and adds the stop strings it needs.
// On a preparation worker: the character may come from the database.
absl::Status RenderMessages(Engine& engine, CharacterRegistry* characters,
                            const CharacterPromptOptions& prompt_options, const std::string& tenant,
                            GenerateJob& job) {
  std::vector<ChatMessage> messages;
  std::string character_name = "Assistant";
  std::string reply_prefix;
  Request& req = job.request;
  if (!job.character_id.empty()) {
    if (characters == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> character = characters->Get(tenant, job.character_id);
    if (!character.ok()) return character.status();
    SessionSetup setup;
    if (!job.user_name.empty()) setup.user_name = job.user_name;
    setup.greeting_index = -1;  // the client's messages carry the greeting when it wants one
    messages = BuildCharacterPreamble((*character)->profile, setup, prompt_options);
    character_name = MacroCharName((*character)->profile);
    reply_prefix = ReplyPrefixFor((*character)->profile);
    AddStopStrings(UserLineStops(setup.user_name), req.sampling);
  }
  messages.insert(messages.end(), std::make_move_iterator(job.messages.begin()),
                  std::make_move_iterator(job.messages.end()));
  const ChatPrompt prompt = BuildMessagesPrompt(engine.model_info().chat_family, character_name, messages, reply_prefix);
  const Tokenizer& tokenizer = engine.tokenizer();
  req.prompt = tokenizer.EncodePrompt(prompt.text, tokenizer.add_bos());
  AddStopStrings(prompt.stop, req.sampling);
  return absl::OkStatus();
}

}  // namespace

GenerationService::GenerationService(Engine& engine, WorkQueue& prepare_queue, Metrics* metrics,
                                     CharacterRegistry* characters, CharacterPromptOptions prompt_options)
    : engine_(engine),
      prepare_queue_(prepare_queue),
      metrics_(metrics),
      characters_(characters),
      prompt_options_(std::move(prompt_options)) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Generate(
    grpc::CallbackServerContext* /*context*/, const Caller& caller, const v1::GenerateRequest* request) {
  std::shared_ptr<GenerateStreamReactor> reactor =
      GenerateStreamReactor::Create(engine_, metrics_, caller.lease);
  absl::StatusOr<GenerateJob> job = ValidateGenerate(*request);
  if (!job.ok()) {
    reactor->FinishWithError(job.status());
    return reactor.get();
  }
  job->request.priority = caller.ClampPriority(job->request.priority);
  job->request.cache_salt = CacheSaltFor(caller, request->cache_salt());
  auto shared_job = std::make_shared<GenerateJob>(*std::move(job));
  const absl::Status scheduled = prepare_queue_.Schedule([this, reactor, shared_job, tenant = caller.tenant] {
    if (reactor->IsCancelled()) {  // Submit ends the RPC as CANCELLED without tokenizing
      reactor->Submit(std::move(shared_job->request));
      return;
    }
    Request& req = shared_job->request;
    if (!shared_job->messages.empty()) {
      if (absl::Status rendered = RenderMessages(engine_, characters_, prompt_options_, tenant, *shared_job); !rendered.ok()) {
        reactor->FinishWithError(rendered);
        return;
      }
    } else if (shared_job->prompt_token_ids.empty()) {
      const Tokenizer& tokenizer = engine_.tokenizer();
      req.prompt = tokenizer.Encode(shared_job->prompt,
                                    shared_job->add_special_tokens && tokenizer.add_bos(),
                                    shared_job->parse_special);
    } else {
      req.prompt = std::move(shared_job->prompt_token_ids);
    }
    reactor->Submit(std::move(req));
  });
  if (!scheduled.ok()) reactor->FinishWithError(scheduled);
  return reactor.get();
}

grpc::ServerUnaryReactor* GenerationService::GetServerInfo(grpc::CallbackServerContext* context,
                                                           const Caller& /*caller*/,
                                                           const v1::GetServerInfoRequest* /*request*/,
                                                           v1::ServerInfo* response) {
  ModelInfoToProto(engine_.model_info(), response);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace troupe
