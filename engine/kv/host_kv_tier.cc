#include "engine/kv/host_kv_tier.h"

#include "common/check.h"

namespace troupe {

HostKvTier::HostKvTier(int num_slots)
    : keys_(num_slots), prev_(num_slots, -1), next_(num_slots, -1) {
  free_.reserve(num_slots);
  for (int s = num_slots - 1; s >= 0; --s) free_.push_back(s);  // slot 0 first
}

void HostKvTier::Unlink(int s) {
  if (prev_[s] >= 0) next_[prev_[s]] = next_[s]; else head_ = next_[s];
  if (next_[s] >= 0) prev_[next_[s]] = prev_[s]; else tail_ = prev_[s];
  prev_[s] = next_[s] = -1;
}

void HostKvTier::PushBack(int s) {
  prev_[s] = tail_;
  next_[s] = -1;
  if (tail_ >= 0) next_[tail_] = s; else head_ = s;
  tail_ = s;
}

int HostKvTier::Find(const BlockKey& key) const {
  auto it = by_hash_.find(key.hash);
  if (it == by_hash_.end()) return -1;
  const BlockKey& have = keys_[it->second];
  if (have.parent != key.parent || have.salt != key.salt || have.tokens != key.tokens) return -1;
  return it->second;
}

void HostKvTier::Touch(int slot) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_DCHECK(slot >= 0 && slot < num_slots());
  Unlink(slot);
  PushBack(slot);
}

int HostKvTier::Insert(const BlockKey& key) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  TROUPE_CHECK(num_slots() > 0);
  int slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {  // evict the least recently used
    slot = head_;
    Unlink(slot);
    by_hash_.erase(keys_[slot].hash);
    ++num_evicted_;
    if (events_ != nullptr) {
      events_->push_back(KvEvent{.kind = KvEvent::Kind::kRemoved, .hash = keys_[slot].hash,
                                 .parent = kNoParentHash, .tokens = {}, .medium = KvEvent::Medium::kHost});
    }
  }
  // A different block under the same hash (a collision) loses its entry: one slot per hash.
  if (auto it = by_hash_.find(key.hash); it != by_hash_.end()) {
    const int old = it->second;
    Unlink(old);
    by_hash_.erase(it);
    free_.push_back(old);
  }
  keys_[slot] = key;
  by_hash_[key.hash] = slot;
  PushBack(slot);
  if (events_ != nullptr) {
    events_->push_back(KvEvent{.kind = KvEvent::Kind::kStored, .hash = key.hash, .parent = key.parent,
                               .tokens = key.tokens, .medium = KvEvent::Medium::kHost});
  }
  return slot;
}

}  // namespace troupe
