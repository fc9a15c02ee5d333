// What the RolePlay RPC families share: finishing a unary RPC, running one on a worker, the
// prefix-cache salt of a call, the checks of a client's text field and page size. Safe from any
// thread.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/caller.h"
#include "server/work_queue.h"

namespace troupe {

// Finishes the unary RPC with `status` at once (no blocking work) and returns its reactor.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, const absl::Status& status);

// Runs `work` on a `queue` worker (it may touch the database) and finishes the unary RPC with
// its status; if the queue refuses the job, the RPC ends with the refusal. `work` may write the
// response: gRPC keeps it alive until the RPC finishes.
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, WorkQueue& queue,
                                   std::function<absl::Status()> work);

// The prefix-cache salt of a call: the caller's tenant and the request's own salt, joined so
// that no two different pairs give the same string; "" when both are empty (the anonymous
// tenant without a salt).
std::string CacheSaltFor(const Caller& caller, const std::string& request_salt);

// A client-supplied text field: kInvalidArgument naming `field` when it is empty or not valid
// UTF-8.
[[nodiscard]] absl::Status ValidateText(const std::string& text, const char* field);

// A List RPC's page_size: kInvalidArgument outside 0..1000. PageLimit: 0 means 100.
[[nodiscard]] absl::Status ValidatePageSize(int page_size);
int PageLimit(int page_size);

// kFailedPrecondition: the server was started without a data directory (no stored characters).
absl::Status NoDataDirectory();

}  // namespace troupe
