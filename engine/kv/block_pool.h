// Block pool of the paged KV cache: hands out block ids and counts references to them.
// The KV bytes themselves live in the backend; blocks here are plain integers.
// Not thread-safe; engine thread only.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe {

using BlockId = int32_t;

class BlockPool {
 public:
  explicit BlockPool(int num_blocks);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int num_free() const { return static_cast<int>(free_.size()); }
  int num_used() const { return num_blocks() - num_free(); }

  bool CanAllocate(int n) const { return n <= num_free(); }
  // Takes n free blocks with reference count 1. REQUIRES: CanAllocate(n).
  std::vector<BlockId> Allocate(int n);
  // Adds a reference to a block in use (sharing a prefix). REQUIRES: block is in use.
  void AddRef(BlockId block);
  // Drops one reference; the block returns to the free list when none remain.
  void Release(BlockId block);
  void ReleaseAll(const std::vector<BlockId>& blocks);
  int ref_count(BlockId block) const { return ref_counts_[block]; }

 private:
  std::vector<int> ref_counts_;  // [num_blocks]
  std::vector<BlockId> free_;    // stack of free ids; the most recently freed is reused first
};

// Blocks needed to hold `num_tokens` tokens.
inline int BlocksForTokens(int64_t num_tokens, int block_size) {
  return static_cast<int>((num_tokens + block_size - 1) / block_size);
}

}  // namespace troupe
