// Opens the Store a `--database` URL names (docs/operations.md, "State shared by replicas"):
//   sqlite:PATH             SqliteStore, the embedded default (PATH's folder is created)
//   postgresql://... or postgres://...
//                           PostgresStore, shared by replicas (a libpq URI)
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/store/store.h"

namespace troupe {

// kInvalidArgument for a URL of another scheme; kFailedPrecondition for PostgreSQL in a build
// without libpq; otherwise what the store's Open returns.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url);

// Whether this build can open postgresql:// URLs.
bool HavePostgresStore();

}  // namespace troupe
