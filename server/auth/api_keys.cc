#include "server/auth/api_keys.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/server_context.h"

namespace troupe {
namespace {

bool HasLimiter(const KeyLimits& limits) {
  return limits.rpm.has_value() || limits.tpm.has_value() || limits.max_streams.has_value();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(const std::string& path) {
  absl::StatusOr<std::vector<KeyEntry>> entries = ReadKeyFile(path);
  if (!entries.ok()) return entries.status();
  std::unique_ptr<ApiKeys> keys(new ApiKeys(path));
  keys->table_ = BuildTable(*std::move(entries), nullptr);
  return keys;
}

std::unique_ptr<ApiKeys> ApiKeys::FromEntries(std::vector<KeyEntry> entries) {
  std::unique_ptr<ApiKeys> keys(new ApiKeys(""));
  keys->table_ = BuildTable(std::move(entries), nullptr);
  return keys;
}

std::shared_ptr<const ApiKeys::Table> ApiKeys::BuildTable(std::vector<KeyEntry> entries,
                                                          const Table* previous) {
  auto table = std::make_shared<Table>();
  table->reserve(entries.size());
  for (KeyEntry& entry : entries) {
    Key key{std::move(entry), nullptr};
    std::shared_ptr<KeyLimiter> kept;
    if (previous != nullptr) {
      for (const Key& old : *previous) {
        if (DigestsEqual(old.entry.digest, key.entry.digest)) kept = old.limiter;
      }
    }
    if (HasLimiter(key.entry.limits)) {
      if (kept != nullptr) {
        kept->SetLimits(key.entry.limits);
        key.limiter = std::move(kept);
      } else {
        key.limiter = std::make_shared<KeyLimiter>(key.entry.limits);
      }
    }
    table->push_back(std::move(key));
  }
  return table;
}

absl::StatusOr<int> ApiKeys::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("these API keys were not read from a file");
  absl::StatusOr<std::vector<KeyEntry>> entries = ReadKeyFile(path_);
  if (!entries.ok()) return entries.status();
  // Reload runs on one thread (the signal loop); readers only copy the pointer, so building
  // from the current table outside the lock races with nothing that writes it.
  std::shared_ptr<const Table> current = table();
  std::shared_ptr<const Table> next = BuildTable(*std::move(entries), current.get());
  const int size = static_cast<int>(next->size());
  absl::MutexLock lock(&mu_);
  table_ = std::move(next);
  return size;
}

std::shared_ptr<const ApiKeys::Table> ApiKeys::table() const {
  absl::MutexLock lock(&mu_);
  return table_;
}

int ApiKeys::num_keys() const { return static_cast<int>(table()->size()); }

absl::StatusOr<Caller> ApiKeys::ResolveKey(absl::string_view key) const {
  if (key.empty()) {
    return absl::UnauthenticatedError(
        "this server needs an API key: send the metadata 'authorization: Bearer <key>' or "
        "'x-api-key: <key>'");
  }
  const Sha256Digest digest = Sha256(key);
  std::shared_ptr<const Table> table = this->table();
  const Key* found = nullptr;
  // Every line is compared, matched or not, so the time does not depend on where a key is.
  for (const Key& candidate : *table) {
    if (DigestsEqual(candidate.entry.digest, digest)) found = &candidate;
  }
  if (found == nullptr) return absl::UnauthenticatedError("the API key is not known to this server");
  Caller caller;
  caller.tenant = found->entry.tenant;
  if (found->entry.limits.max_priority.has_value()) {
    caller.max_priority = *found->entry.limits.max_priority;
  }
  caller.limiter = found->limiter;
  return caller;
}

absl::StatusOr<Caller> ApiKeys::Resolve(const grpc::CallbackServerContext& context) const {
  return ResolveKey(PresentedKey(context));
}

CallerResolver ApiKeys::Resolver() const {
  return [this](const grpc::CallbackServerContext& context) { return Resolve(context); };
}

std::string PresentedKey(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    constexpr absl::string_view kBearer = "bearer ";
    if (value.size() > kBearer.size() && absl::StartsWithIgnoreCase(value, kBearer)) {
      return std::string(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
    }
  }
  if (auto it = metadata.find("x-api-key"); it != metadata.end()) {
    return std::string(absl::StripAsciiWhitespace(absl::string_view(it->second.data(), it->second.size())));
  }
  return "";
}

}  // namespace troupe
