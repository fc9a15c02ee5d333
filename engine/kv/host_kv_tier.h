// The host tier of the prefix cache: full blocks that the block pool evicts from the backend's
// KV cache are copied into host memory instead of being dropped, and copied back when a later
// prompt needs them (docs/kv_cache.md, "Host tier"). Like BlockPool this is bookkeeping only:
// slots are integers, and the bytes live in the backend (Backend::AllocateHostKv).
// Not thread-safe; engine thread only.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/thread_owner.h"
#include "engine/kv/block_hash.h"
#include "engine/kv/kv_event.h"

namespace troupe {

// One block's copy between the backend's KV cache and a host slot. The pool logs them in the
// order it decides them; the backend must run them in that order (a slot or a device block can
// be written by one copy and read by a later one of the same log) and before the next forward
// pass reads or writes the blocks.
struct KvBlockCopy {
  enum class Direction { kToHost, kToDevice };
  Direction direction = Direction::kToHost;
  BlockId device_block = -1;
  int host_slot = -1;
};

class HostKvTier {
 public:
  // num_slots host blocks (the --host-kv-cache-gb budget over the bytes of one block).
  explicit HostKvTier(int num_slots);
  HostKvTier(const HostKvTier&) = delete;
  HostKvTier& operator=(const HostKvTier&) = delete;

  int num_slots() const { return static_cast<int>(keys_.size()); }
  int num_used() const { return static_cast<int>(by_hash_.size()); }
  int64_t num_evicted() const { return num_evicted_; }

  // The slot holding exactly `key` (hash, parent, salt and tokens), or -1.
  int Find(const BlockKey& key) const;
  // Marks a used slot as the most recently used.
  void Touch(int slot);
  // A slot for `key`, the most recently used: a free one, else the least recently used is
  // evicted (a kRemoved event for the host medium). Logs kStored for the host medium.
  // REQUIRES: num_slots() > 0 and Find(key) == -1.
  int Insert(const BlockKey& key);
  const BlockKey& key(int slot) const { return keys_[slot]; }

  // As BlockPool::RecordEvents, for the host medium; null stops it. `log` must outlive it.
  void RecordEvents(std::vector<KvEvent>* log) { events_ = log; }

 private:
  void Unlink(int slot);
  void PushBack(int slot);

  std::vector<BlockKey> keys_;              // [num_slots]; meaningful while used
  std::vector<int> prev_, next_;            // [num_slots]: LRU list of used slots; -1 = none
  int head_ = -1, tail_ = -1;               // head = least recently used
  std::vector<int> free_;                   // unused slots (stack)
  std::unordered_map<BlockHash, int> by_hash_;
  int64_t num_evicted_ = 0;
  std::vector<KvEvent>* events_ = nullptr;
  ThreadOwner engine_thread_;
};

}  // namespace troupe
