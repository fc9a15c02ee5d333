#include "server/generation_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

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
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(proto.sampling(), SamplingParams());
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

}  // namespace

GenerationService::GenerationService(Engine& engine, WorkQueue& prepare_queue, Metrics* metrics)
    : engine_(engine), prepare_queue_(prepare_queue), metrics_(metrics) {}

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

grpc::ServerUnaryReactor* GenerationService::GetServerInfo(grpc::CallbackServerContext* context,
                                                           const Caller& /*caller*/,
                                                           const v1::GetServerInfoRequest* /*request*/,
                                                           v1::ServerInfo* response) {
  ModelInfoToProto(engine_.model_info(), response);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace troupe
