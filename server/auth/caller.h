// Who is calling: the tenant an RPC acts for and what its API key allows. RolePlayService
// resolves it once per RPC, before any work, and hands it to the RPC family; every stored or
// cached thing the family touches is scoped to caller.tenant. See docs/security.md.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_callback.h"

namespace troupe {

struct Caller {
  // What characters, sessions, memories and the prefix-cache salt belong to. "" is the one
  // anonymous tenant of a server started without --api-keys.
  std::string tenant;
};

// Resolves the caller of an RPC from its metadata. A non-OK status (kUnauthenticated, or
// kResourceExhausted for a key over its limits) ends the RPC before any work. Thread-safe.
using CallerResolver = std::function<absl::StatusOr<Caller>(const grpc::CallbackServerContext& context)>;

// The resolver of a single-tenant server: every caller is the anonymous tenant.
inline CallerResolver AnonymousCallers() {
  return [](const grpc::CallbackServerContext&) -> absl::StatusOr<Caller> { return Caller{}; };
}

}  // namespace troupe
