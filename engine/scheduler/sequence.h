// A sequence as the scheduler sees it: its tokens, how many have KV in the cache, its blocks.
// Owned by the engine (one per live request); the scheduler holds pointers that must outlive
// their time in its queues. Not thread-safe; engine thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "engine/kv/block_hash.h"
#include "engine/kv/block_pool.h"
#include "engine/request/request.h"

namespace troupe {

enum class SeqStatus { kWaiting, kRunning, kFinished };

struct Sequence {
  RequestId id = 0;
  int priority = 0;                 // larger runs first, is preempted last
  // When priority rises to 0 (Request::promote_after); InfiniteFuture = never (or done).
  absl::Time promote_at = absl::InfiniteFuture();
  uint64_t arrival_order = 0;       // FIFO tie-break among equal priorities
  std::vector<TokenId> tokens;      // prompt, then generated tokens
  int num_prompt_tokens = 0;
  int num_computed = 0;             // tokens whose K/V are in the cache
  std::vector<BlockId> blocks;      // block table: token t lives in blocks[t / block_size]
  SeqStatus status = SeqStatus::kWaiting;
  int num_preemptions = 0;

  // Prefix caching.
  uint64_t cache_salt = 0;              // CacheSaltOf(tenant): blocks match only within a tenant
  std::vector<BlockHash> block_hashes;  // chained hashes of the full blocks of `tokens` so far
  int num_cached_blocks = 0;            // leading blocks that are in the prefix cache (hits, or
                                        // registered after computing); reset on preemption
  int num_cached_tokens = -1;           // prompt tokens served from the cache at first
                                        // admission; -1 until admitted
  int num_restored_blocks = 0;          // blocks restored from the host tier for it (until its
                                        // first admission; a failed attempt's count too)
  int num_restored_tokens = 0;          // of num_cached_tokens, restored from the host tier

  int num_tokens() const { return static_cast<int>(tokens.size()); }
  int num_generated() const { return num_tokens() - num_prompt_tokens; }
  int num_uncomputed() const { return num_tokens() - num_computed; }
};

}  // namespace troupe
