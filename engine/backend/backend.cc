// What backend.h defines outside any one backend: the KV cache's size per block, which every
// backend's cache layout follows and the engine sizes its block pool by.
#include "engine/backend/backend.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace troupe {

int64_t KvBlockBytes(const ModelConfig& config, const KvCacheSpec& spec) {
  const int64_t kv_dim = static_cast<int64_t>(config.num_kv_heads) * config.head_dim;
  return 2 * static_cast<int64_t>(config.num_layers) * spec.block_size * kv_dim *
         static_cast<int64_t>(KvElementBytes(spec.type));
}

absl::Status Backend::AllocateHostKv(int64_t) {
  return absl::UnimplementedError(absl::StrCat("the ", std::string(name()), " backend has no host KV tier"));
}

void Backend::CopyKvBlocks(std::span<const KvBlockCopy> copies) {
  TROUPE_CHECK_MSG(copies.empty(), "the %s backend has no host KV tier", std::string(name()).c_str());
}

}  // namespace troupe
