// What happened to the prefix cache's full blocks, for routers that track which replica holds
// which prefix (KV-cache events, docs/kv_cache.md "KV-cache events"): a block stored under its
// chained hash, a block evicted, everything dropped. The hashes are BlockPool's, so the tenant's
// cache salt is folded into them (block_hash.h) and no tenant name ever leaves the engine.
// Partial blocks (BlockPool::RegisterPartial) are a session's own and never announced.
// With a host tier (host_kv_tier.h) a block can be in device memory, in host memory, or both;
// each event says which copy it is about (vLLM's `medium`).
#pragma once

#include <vector>

#include "common/types.h"
#include "engine/kv/block_hash.h"

namespace troupe {

struct KvEvent {
  enum class Kind { kStored, kRemoved, kCleared };
  Kind kind = Kind::kStored;
  BlockHash hash = 0;                    // kStored, kRemoved
  BlockHash parent = kNoParentHash;      // kStored: the previous block's hash (kNoParentHash: first)
  std::vector<TokenId> tokens;           // kStored: the block's block_size token ids
  enum class Medium { kDevice, kHost };
  Medium medium = Medium::kDevice;       // kStored, kRemoved: the backend's KV cache or the host tier
};

}  // namespace troupe
