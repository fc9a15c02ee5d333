#include "engine/kv/block_pool.h"

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "common/thread_owner.h"

namespace troupe {

BlockPool::BlockPool(int num_blocks)
    : ref_counts_(num_blocks, 0),
      cached_(num_blocks, false),
      keys_(num_blocks),
      prev_(num_blocks, -1),
      next_(num_blocks, -1),
      partial_(num_blocks, false) {
  uncached_free_.reserve(num_blocks);
  // Push in reverse so that block 0 is handed out first (easier to read in tests).
  for (BlockId b = num_blocks - 1; b >= 0; --b) uncached_free_.push_back(b);
}

void BlockPool::Unlink(BlockId b) {
  if (prev_[b] >= 0) next_[prev_[b]] = next_[b]; else head_ = next_[b];
  if (next_[b] >= 0) prev_[next_[b]] = prev_[b]; else tail_ = prev_[b];
  prev_[b] = next_[b] = -1;
  --num_evictable_;
}

void BlockPool::PushBack(BlockId b) {
  prev_[b] = tail_;
  next_[b] = -1;
  if (tail_ >= 0) next_[tail_] = b; else head_ = b;
  tail_ = b;
  ++num_evictable_;
}

void BlockPool::Uncache(BlockId b) {
  if (partial_[b]) {
    auto [first, last] = partial_by_parent_.equal_range(keys_[b].parent);
    for (auto it = first; it != last; ++it) {
      if (it->second == b) {
        partial_by_parent_.erase(it);
        break;
      }
    }
    partial_[b] = false;
  } else {
    by_hash_.erase(keys_[b].hash);
    if (events_ != nullptr) {
      events_->push_back(KvEvent{.kind = KvEvent::Kind::kRemoved, .hash = keys_[b].hash, .parent = kNoParentHash,
                                 .tokens = {}});
    }
  }
  keys_[b] = BlockKey{};
  cached_[b] = false;
}

std::vector<BlockId> BlockPool::Allocate(int n) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK_MSG(CanAllocate(n), "allocating %d blocks with %d free", n, num_free());
  std::vector<BlockId> out;
  out.reserve(n);
  while (static_cast<int>(out.size()) < n && !uncached_free_.empty()) {
    out.push_back(uncached_free_.back());
    uncached_free_.pop_back();
  }
  while (static_cast<int>(out.size()) < n) {  // evict, least recently released first
    const BlockId b = head_;
    Unlink(b);
    if (host_ != nullptr && host_->num_slots() > 0 && !partial_[b]) Offload(b);
    Uncache(b);
    out.push_back(b);
  }
  for (BlockId b : out) {
    TROUPE_DCHECK(ref_counts_[b] == 0);
    ref_counts_[b] = 1;
  }
  return out;
}

void BlockPool::AddRef(BlockId block) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(block >= 0 && block < num_blocks() && (ref_counts_[block] > 0 || cached_[block]));
  if (ref_counts_[block]++ == 0) Unlink(block);
}

void BlockPool::Release(BlockId block) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(block >= 0 && block < num_blocks() && ref_counts_[block] > 0);
  if (--ref_counts_[block] > 0) return;
  if (cached_[block]) {
    PushBack(block);
  } else {
    uncached_free_.push_back(block);
  }
}

void BlockPool::ReleaseAll(const std::vector<BlockId>& blocks) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) Release(*it);
}

void BlockPool::RegisterPartial(BlockId block, BlockKey key) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(block >= 0 && block < num_blocks() && ref_counts_[block] > 0 && !cached_[block]);
  partial_by_parent_.emplace(key.parent, block);
  keys_[block] = std::move(key);
  cached_[block] = true;
  partial_[block] = true;
}

std::pair<BlockId, int> BlockPool::TakePartial(BlockHash parent, uint64_t salt,
                                               std::span<const TokenId> tokens, int max_tokens) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  BlockId best = -1;
  int best_len = 0;
  auto [first, last] = partial_by_parent_.equal_range(parent);
  for (auto it = first; it != last; ++it) {
    const BlockKey& key = keys_[it->second];
    if (key.salt != salt || ref_counts_[it->second] > 0) continue;
    const int limit = std::min({static_cast<int>(key.tokens.size()), static_cast<int>(tokens.size()), max_tokens});
    int len = 0;
    while (len < limit && key.tokens[len] == tokens[len]) ++len;
    if (len > best_len) {
      best = it->second;
      best_len = len;
    }
  }
  if (best < 0) return {-1, 0};
  Unlink(best);
  Uncache(best);
  ref_counts_[best] = 1;
  return {best, best_len};
}

void BlockPool::Offload(BlockId b) {
  if (const int slot = host_->Find(keys_[b]); slot >= 0) {
    host_->Touch(slot);  // the tier has it already (it was restored from there)
    return;
  }
  const int slot = host_->Insert(keys_[b]);
  copies_.push_back({.direction = KvBlockCopy::Direction::kToHost, .device_block = b, .host_slot = slot});
  ++num_offloaded_;
}

BlockId BlockPool::Restore(const BlockKey& key) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  if (host_ == nullptr) return -1;
  const int slot = host_->Find(key);
  if (slot < 0 || !CanAllocate(1)) return -1;
  host_->Touch(slot);  // most recent, so that offloads made by Allocate below evict others first
  const BlockId b = Allocate(1)[0];
  if (host_->Find(key) != slot) {  // a one-slot tier gave the slot to the block Allocate evicted
    Release(b);
    return -1;
  }
  copies_.push_back({.direction = KvBlockCopy::Direction::kToDevice, .device_block = b, .host_slot = slot});
  ++num_restored_;
  Register(b, key);  // false only on a hash collision: the block still holds key's K/V, uncached
  return b;
}

BlockId BlockPool::Lookup(const BlockKey& key) const {
  auto it = by_hash_.find(key.hash);
  if (it == by_hash_.end()) return -1;
  const BlockKey& have = keys_[it->second];
  if (have.parent != key.parent || have.salt != key.salt || have.tokens != key.tokens) return -1;
  return it->second;
}

bool BlockPool::Register(BlockId block, BlockKey key) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(block >= 0 && block < num_blocks() && ref_counts_[block] > 0 && !cached_[block]);
  if (!by_hash_.emplace(key.hash, block).second) return false;
  if (events_ != nullptr) {
    events_->push_back(
        KvEvent{.kind = KvEvent::Kind::kStored, .hash = key.hash, .parent = key.parent, .tokens = key.tokens});
  }
  keys_[block] = std::move(key);
  cached_[block] = true;
  return true;
}

}  // namespace troupe
