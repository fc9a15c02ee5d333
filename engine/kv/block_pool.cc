#include "engine/kv/block_pool.h"

#include "engine/common/check.h"

namespace troupe {

BlockPool::BlockPool(int num_blocks) : ref_counts_(num_blocks, 0) {
  free_.reserve(num_blocks);
  // Push in reverse so that block 0 is handed out first (easier to read in tests).
  for (BlockId b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::vector<BlockId> BlockPool::Allocate(int n) {
  TROUPE_CHECK_MSG(CanAllocate(n), "allocating %d blocks with %d free", n, num_free());
  std::vector<BlockId> out(free_.end() - n, free_.end());
  free_.resize(free_.size() - n);
  for (BlockId b : out) {
    TROUPE_DCHECK(ref_counts_[b] == 0);
    ref_counts_[b] = 1;
  }
  return out;
}

void BlockPool::AddRef(BlockId block) {
  TROUPE_CHECK(block >= 0 && block < num_blocks() && ref_counts_[block] > 0);
  ++ref_counts_[block];
}

void BlockPool::Release(BlockId block) {
  TROUPE_CHECK(block >= 0 && block < num_blocks() && ref_counts_[block] > 0);
  if (--ref_counts_[block] == 0) free_.push_back(block);
}

void BlockPool::ReleaseAll(const std::vector<BlockId>& blocks) {
  for (BlockId b : blocks) Release(b);
}

}  // namespace troupe
