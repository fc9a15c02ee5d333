#include "server/chat_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/session/prompt_builder.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/generate_reactor.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace troupe {
namespace {

// Checks a client-supplied text field: non-empty and valid UTF-8.
absl::Status ValidateText(const std::string& text, const char* field) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

// Everything a Generate job needs, copied out of the request in the reaction.
struct GenerateJob {
  std::string prompt;
  std::vector<TokenId> prompt_token_ids;
  bool add_special_tokens = true;
  bool parse_special = true;
  Request request;  // sampling, priority and arrival_time set; prompt filled later
};

absl::StatusOr<GenerateJob> ValidateGenerate(const v1::GenerateRequest& proto) {
  const bool has_text = !proto.prompt().empty();
  const bool has_ids = proto.prompt_token_ids_size() > 0;
  if (!has_text && !has_ids) {
    return absl::InvalidArgumentError("prompt is empty (set prompt or prompt_token_ids)");
  }
  if (has_text && has_ids) {
    return absl::InvalidArgumentError("set either prompt or prompt_token_ids, not both");
  }
  if (has_text) {
    if (absl::Status status = ValidateText(proto.prompt(), "prompt"); !status.ok()) return status;
  }
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(proto.sampling());
  if (!sampling.ok()) return sampling.status();

  GenerateJob job;
  job.prompt = proto.prompt();
  job.prompt_token_ids.assign(proto.prompt_token_ids().begin(), proto.prompt_token_ids().end());
  job.add_special_tokens = !proto.has_add_special_tokens() || proto.add_special_tokens();
  job.parse_special = !proto.has_parse_special() || proto.parse_special();
  job.request.sampling = *std::move(sampling);
  job.request.priority = proto.priority();
  job.request.arrival_time = absl::Now();  // TTFT includes tokenization, as in vLLM
  return job;
}

// The prefix-cache salt of a call: its tenant (the x-api-key metadata, else authorization) and
// the request's own salt, joined so that no two different pairs give the same string.
std::string CacheSaltFor(const grpc::CallbackServerContext& context, const std::string& request_salt) {
  std::string tenant;
  for (const char* key : {"x-api-key", "authorization"}) {
    auto it = context.client_metadata().find(key);
    if (it != context.client_metadata().end()) {
      tenant.assign(it->second.data(), it->second.size());
      break;
    }
  }
  if (tenant.empty() && request_salt.empty()) return "";
  return absl::StrCat(tenant.size(), ":", tenant, request_salt);
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

ChatService::ChatService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue,
                         Metrics* metrics)
    : engine_(engine), sessions_(sessions), prepare_queue_(prepare_queue), metrics_(metrics) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* ChatService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  std::shared_ptr<GenerateStreamReactor> reactor = GenerateStreamReactor::Create(engine_, metrics_);
  absl::StatusOr<GenerateJob> job = ValidateGenerate(*request);
  if (!job.ok()) {
    reactor->FinishWithError(job.status());
    return reactor.get();
  }
  job->request.cache_salt = CacheSaltFor(*context, request->cache_salt());
  auto shared_job = std::make_shared<GenerateJob>(*std::move(job));
  Engine& engine = engine_;
  const absl::Status scheduled = prepare_queue_.Schedule([reactor, shared_job, &engine] {
    if (reactor->IsCancelled()) {  // Submit ends the RPC as CANCELLED without tokenizing
      reactor->Submit(std::move(shared_job->request));
      return;
    }
    Request& req = shared_job->request;
    if (shared_job->prompt_token_ids.empty()) {
      const Tokenizer& tokenizer = engine.tokenizer();
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

grpc::ServerWriteReactor<v1::ChatResponse>* ChatService::Chat(grpc::CallbackServerContext* context,
                                                             const v1::ChatRequest* request) {
  std::shared_ptr<ChatStreamReactor> reactor = ChatStreamReactor::Create(engine_, metrics_);
  absl::Status valid = request->session_id().empty()
                           ? absl::InvalidArgumentError("session_id is empty")
                           : ValidateText(request->message(), "message");
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(request->sampling());
  if (valid.ok()) valid = sampling.status();
  if (!valid.ok()) {
    reactor->FinishWithError(valid);
    return reactor.get();
  }
  Request base;
  base.sampling = *std::move(sampling);
  base.priority = request->priority();
  base.cache_salt = CacheSaltFor(*context, request->cache_salt());
  base.arrival_time = absl::Now();
  auto shared_request = std::make_shared<Request>(std::move(base));
  Engine& engine = engine_;
  SessionStore& sessions = sessions_;
  const absl::Status scheduled = prepare_queue_.Schedule(
      [reactor, shared_request, &engine, &sessions, session_id = request->session_id(),
       message = request->message()] {
        Request& req = *shared_request;
        if (reactor->IsCancelled()) {
          reactor->Submit(std::move(req));  // ends the RPC as CANCELLED
          return;
        }
        absl::StatusOr<Session> session = sessions.Get(session_id);
        if (!session.ok()) {
          reactor->FinishWithError(session.status());
          return;
        }
        const ChatFamily family = engine.model_info().chat_family;
        const Tokenizer& tokenizer = engine.tokenizer();
        const std::string continuation =
            session->context_tokens.empty() ? std::string()
                                            : BuildChatContinuation(family, session->character, message);
        if (!continuation.empty()) {
          // Token for token the previous turn's prompt and reply, then the new turn: the prefix
          // cache serves everything before the continuation.
          req.prompt = session->context_tokens;
          const std::vector<TokenId> tail = tokenizer.Encode(continuation, false, /*parse_special=*/true);
          req.prompt.insert(req.prompt.end(), tail.begin(), tail.end());
        } else {
          const ChatPrompt prompt = BuildChatPrompt(family, session->character, session->history, message);
          for (const std::string& stop : prompt.stop) req.sampling.stop.push_back(stop);
          req.prompt = tokenizer.Encode(prompt.text, tokenizer.add_bos(), /*parse_special=*/true);
        }
        // Appended only if the turn finishes OK; see SessionStore::AppendTurn for conflicts. A
        // reply that ended at end of turn or max_tokens leaves its tokens as the next turn's
        // context (after a stop string the tokens hold text the reply does not, so the next
        // turn renders the text history instead).
        reactor->set_on_success([&sessions, session_id, message, version = session->history.size(),
                                 prompt = req.prompt](std::string reply, std::vector<TokenId> reply_tokens,
                                                      FinishReason reason) {
          std::vector<TokenId> context;
          if (reason == FinishReason::kEos || reason == FinishReason::kLength) {
            context = prompt;
            context.insert(context.end(), reply_tokens.begin(), reply_tokens.end());
          }
          return sessions.AppendTurn(session_id, version, message, std::move(reply), std::move(context));
        });
        reactor->Submit(std::move(req));
      });
  if (!scheduled.ok()) reactor->FinishWithError(scheduled);
  return reactor.get();
}

grpc::ServerUnaryReactor* ChatService::CreateSession(grpc::CallbackServerContext* context,
                                                     const v1::CreateSessionRequest* request,
                                                     v1::Session* response) {
  absl::StatusOr<Session> session = sessions_.Create(CharacterFromProto(request->character()));
  if (session.ok()) SessionToProto(*session, response);
  return FinishUnary(context, session.status());
}

grpc::ServerUnaryReactor* ChatService::GetSession(grpc::CallbackServerContext* context,
                                                  const v1::GetSessionRequest* request,
                                                  v1::Session* response) {
  absl::StatusOr<Session> session = sessions_.Get(request->session_id());
  if (session.ok()) SessionToProto(*session, response);
  return FinishUnary(context, session.status());
}

grpc::ServerUnaryReactor* ChatService::DeleteSession(grpc::CallbackServerContext* context,
                                                     const v1::DeleteSessionRequest* request,
                                                     v1::DeleteSessionResponse* /*response*/) {
  return FinishUnary(context, sessions_.Delete(request->session_id()));
}

grpc::ServerUnaryReactor* ChatService::GetServerInfo(grpc::CallbackServerContext* context,
                                                     const v1::GetServerInfoRequest* /*request*/,
                                                     v1::ServerInfo* response) {
  ModelInfoToProto(engine_.model_info(), response);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace troupe
