#include "server/rpc_util.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/status_util.h"

namespace troupe {

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, WorkQueue& queue,
                                   std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Status scheduled =
      queue.Schedule([reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

std::string CacheSaltFor(const Caller& caller, const std::string& request_salt) {
  const std::string& tenant = caller.tenant;
  if (tenant.empty() && request_salt.empty()) return "";
  return absl::StrCat(tenant.size(), ":", tenant, request_salt);
}

absl::Status ValidateText(const std::string& text, const char* field) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePageSize(int page_size) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", page_size, "; allowed 0 (default 100) to 1000"));
  }
  return absl::OkStatus();
}

int PageLimit(int page_size) { return page_size == 0 ? 100 : page_size; }

absl::Status NoDataDirectory() {
  return absl::FailedPreconditionError(
      "this server keeps no characters: start it with --data-dir to enable stored characters");
}

}  // namespace troupe
