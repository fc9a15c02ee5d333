#include "engine/store/open_store.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/store/sqlite_store.h"
#ifdef TROUPE_HAVE_POSTGRES
#include "engine/store/postgres_store.h"
#endif

namespace troupe {

bool HavePostgresStore() {
#ifdef TROUPE_HAVE_POSTGRES
  return true;
#else
  return false;
#endif
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  if (absl::StartsWith(url, "sqlite:")) {
    const std::filesystem::path path = url.substr(7);
    if (path.empty()) return absl::InvalidArgumentError("--database sqlite: needs a file path (sqlite:troupe-data/troupe.db)");
    if (path.has_parent_path()) {
      std::error_code error;
      std::filesystem::create_directories(path.parent_path(), error);
      if (error) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot create the folder of ", path.string(), ": ", error.message()));
      }
    }
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path.string());
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }
  if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
#ifdef TROUPE_HAVE_POSTGRES
    absl::StatusOr<std::unique_ptr<PostgresStore>> store = PostgresStore::Open(url);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
#else
    return absl::FailedPreconditionError(
        "this troupe was built without PostgreSQL (libpq-dev was not found at configure time)");
#endif
  }
  return absl::InvalidArgumentError(
      "--database takes sqlite:PATH or a postgresql:// URL; the URL given has neither scheme");
}

}  // namespace troupe
