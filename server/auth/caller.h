// Who is calling: the tenant an RPC acts for and what its API key allows. RolePlayService
// resolves it once per RPC, before any work, admits the call against the key's limits and
// hands it to the RPC family; every stored or cached thing the family touches is scoped to
// caller.tenant. See docs/security.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/key_limiter.h"

namespace troupe {

struct Caller {
  // What characters, sessions, memories and the prefix-cache salt belong to. "" is the one
  // anonymous tenant of a server started without --api-keys.
  std::string tenant;
  // Generate and Chat run at min(requested priority, max_priority) (the key's max_priority).
  int max_priority = std::numeric_limits<int32_t>::max();
  // The key's rpm/tpm/max_streams; null = unlimited. Set by the resolver.
  std::shared_ptr<KeyLimiter> limiter;
  // This RPC's hold on `limiter` (tokens are charged to it; a stream's slot is given back when
  // it ends). Set by RolePlayService after admission; null when there is no limiter. A
  // streaming RPC's reactor keeps it until the RPC ends.
  std::shared_ptr<CallLease> lease;

  int ClampPriority(int requested) const { return std::min(requested, max_priority); }
};

// Resolves the caller of an RPC from its metadata. A non-OK status (kUnauthenticated) ends the
// RPC before any work. Thread-safe.
using CallerResolver = std::function<absl::StatusOr<Caller>(const grpc::CallbackServerContext& context)>;

// The resolver of a single-tenant server: every caller is the anonymous tenant.
inline CallerResolver AnonymousCallers() {
  return [](const grpc::CallbackServerContext&) -> absl::StatusOr<Caller> { return Caller{}; };
}

}  // namespace troupe
