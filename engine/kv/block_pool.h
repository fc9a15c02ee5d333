// Block pool of the paged KV cache: hands out block ids, counts references to them, and keeps
// the prefix cache: full blocks registered under their chained hash (block_hash.h), which
// stay cached after their last reference drops, until the pool needs the block back.
// The KV bytes themselves live in the backend; blocks here are plain integers.
// Not thread-safe; engine thread only. The public mutators check that in debug builds
// (TROUPE_DCHECK_ON_ENGINE_THREAD, common/thread_owner.h).
//
// A free block is either uncached (handed out first) or cached and evictable: those wait in
// least-recently-released order and are evicted, oldest first, only when no uncached block is
// left. Looking a cached block up and taking a reference revives it without recomputation.
//
// Besides full blocks, a sequence's last, partly filled block can be kept when the sequence
// ends (a session's turn ends mid-block): it is remembered under its parent's hash with the
// tokens it holds, and the next sequence that continues the same tokens adopts it whole
// (TakePartial) instead of recomputing them; it is never shared, since its owner writes on.
//
// With a host tier attached (AttachHostTier), a full cached block that Allocate evicts is
// copied to a host slot first (unless the tier holds it already), and Restore brings a block
// back from the tier into a fresh device block. Both are logged as KvBlockCopy entries, in
// the order decided, for the engine to hand to the backend before the next forward pass
// (TakeCopies). Partial blocks are never offloaded.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <unordered_map>
#include <vector>

#include "common/thread_owner.h"
#include "engine/kv/block_hash.h"
#include "engine/kv/host_kv_tier.h"
#include "engine/kv/kv_event.h"

namespace troupe {

class BlockPool {
 public:
  explicit BlockPool(int num_blocks);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  // Blocks with no reference (uncached or evictable).
  int num_free() const { return static_cast<int>(uncached_free_.size()) + num_evictable_; }
  int num_used() const { return num_blocks() - num_free(); }
  int num_cached() const { return static_cast<int>(by_hash_.size()); }

  bool CanAllocate(int n) const { return n <= num_free(); }
  // Takes n free blocks with reference count 1: uncached ones first, then evicts cached ones,
  // least recently released first. REQUIRES: CanAllocate(n).
  std::vector<BlockId> Allocate(int n);
  // Adds a reference; a cached block with none leaves the eviction queue.
  // REQUIRES: the block is in use or cached.
  void AddRef(BlockId block);
  // Drops one reference. At zero a cached block joins the eviction queue (most recent last);
  // an uncached one goes back to the free list.
  void Release(BlockId block);
  // Releases in reverse order, so a sequence's tail blocks are evicted before its head, which
  // other sequences are more likely to share.
  void ReleaseAll(const std::vector<BlockId>& blocks);
  int ref_count(BlockId block) const { return ref_counts_[block]; }

  // The cached block holding exactly `key` (hash, parent, salt and tokens), or -1.
  BlockId Lookup(const BlockKey& key) const;
  // Registers a full block whose K/V are computed under `key`. Returns false (and leaves the
  // block uncached) when another block already holds that hash.
  // REQUIRES: the block is in use and not cached yet.
  bool Register(BlockId block, BlockKey key);
  bool is_cached(BlockId block) const { return cached_[block]; }

  // Remembers a block that holds `key.tokens` (fewer than a block's worth) after the block
  // chain whose last hash is key.parent, for TakePartial. Call before the last Release.
  // REQUIRES: the block is in use and not cached.
  void RegisterPartial(BlockId block, BlockKey key);
  // The remembered partial block under `parent` and `salt` whose tokens share the longest
  // common prefix with `tokens` (at most `max_tokens` of them), adopted: it leaves the cache
  // with reference count 1, for the caller to write on. Returns the block and the number of
  // leading tokens it holds, or {-1, 0}. Only unreferenced blocks are offered.
  std::pair<BlockId, int> TakePartial(BlockHash parent, uint64_t salt, std::span<const TokenId> tokens,
                                      int max_tokens);
  int num_partial() const { return static_cast<int>(partial_by_parent_.size()); }

  // From now on appends a kStored event to *log for each full block registered and a kRemoved
  // one for each full block evicted, in order (kv_event.h); null stops it. The caller drains
  // the log. `log` must outlive the recording.
  void RecordEvents(std::vector<KvEvent>* log) { events_ = log; }

  // Host tier: from now on evicted full blocks go to `tier` (its events too, when recording).
  // `tier` must outlive the pool; null detaches it.
  void AttachHostTier(HostKvTier* tier) { host_ = tier; }
  HostKvTier* host_tier() const { return host_; }
  // Brings the block holding exactly `key` back from the host tier: allocates a device block
  // (which may evict, and offload, others), logs the host-to-device copy and registers the
  // block under `key`. Returns it with one reference, or -1 when the tier does not hold the key
  // or no block is free. REQUIRES: Lookup(key) == -1.
  BlockId Restore(const BlockKey& key);
  // The copies logged since the last call, in order; the caller must run them all before the
  // next forward pass (KvBlockCopy).
  std::vector<KvBlockCopy> TakeCopies() { return std::exchange(copies_, {}); }
  int64_t num_offloaded() const { return num_offloaded_; }  // blocks copied to the host tier
  int64_t num_restored() const { return num_restored_; }    // blocks copied back

 private:
  void Unlink(BlockId block);      // from the eviction queue
  void PushBack(BlockId block);    // onto the eviction queue's tail (most recent)
  void Uncache(BlockId block);
  void Offload(BlockId block);     // to the host tier, before Uncache. REQUIRES: a full block

  std::vector<int> ref_counts_;           // [num_blocks]
  std::vector<BlockId> uncached_free_;    // stack; the most recently freed is reused first
  std::vector<bool> cached_;              // [num_blocks]
  std::vector<BlockKey> keys_;            // [num_blocks]; meaningful while cached
  std::unordered_map<BlockHash, BlockId> by_hash_;
  std::unordered_multimap<BlockHash, BlockId> partial_by_parent_;  // key.parent -> block
  // Eviction queue: cached blocks with no reference, a doubly linked list through these arrays.
  std::vector<BlockId> prev_, next_;      // [num_blocks]; -1 = none
  BlockId head_ = -1, tail_ = -1;         // head = least recently released
  std::vector<bool> partial_;             // [num_blocks]: cached as a partial block
  int num_evictable_ = 0;
  std::vector<KvEvent>* events_ = nullptr;  // RecordEvents
  HostKvTier* host_ = nullptr;              // AttachHostTier
  std::vector<KvBlockCopy> copies_;         // TakeCopies
  int64_t num_offloaded_ = 0, num_restored_ = 0;
  ThreadOwner engine_thread_;
};

// Blocks needed to hold `num_tokens` tokens.
inline int BlocksForTokens(int64_t num_tokens, int block_size) {
  return static_cast<int>((num_tokens + block_size - 1) / block_size);
}

}  // namespace troupe
