// Identity of a full KV block for prefix caching: a chained hash of the parent block's hash,
// the block's token ids and the tenant's cache salt. Equal hashes are only a hint; the block
// pool confirms a match by comparing the parent hash, the salt and the token ids themselves.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/types.h"

namespace troupe {

using BlockHash = uint64_t;
using BlockId = int32_t;

// What a cached block holds, compared in full on every lookup (a hash match alone never
// shares a block: not across tenants, not on a collision).
struct BlockKey {
  BlockHash hash = 0;
  BlockHash parent = 0;
  uint64_t salt = 0;
  std::vector<TokenId> tokens;  // block_size ids
};

// The parent "hash" of a sequence's first block.
inline constexpr BlockHash kNoParentHash = 0x9e3779b97f4a7c15ull;

// splitmix64's finalizer: a bijective 64-bit mix.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

inline BlockHash HashBlock(BlockHash parent, std::span<const TokenId> tokens, uint64_t salt) {
  uint64_t h = Mix64(parent ^ Mix64(salt + 0x632be59bd9b4e019ull));
  for (TokenId t : tokens) h = Mix64(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x8cb92ba72f3d8dd7ull));
  return h;
}

// A tenant's salt from its name (FNV-1a, then mixed); "" is the shared default tenant.
inline uint64_t CacheSaltOf(std::string_view tenant) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : tenant) h = (h ^ c) * 0x100000001b3ull;
  return Mix64(h);
}

}  // namespace troupe
