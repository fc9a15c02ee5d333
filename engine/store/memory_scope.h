// Who a memory belongs to. A value of the store's records (kept as its integer value) and of
// the memory layer above it, so it lives here, under both.
#pragma once

namespace troupe {

// Retrieval never crosses scopes (nor users): the memory service keeps one MemoryIndex per
// (scope, owner) and searches only the caller's.
enum class MemoryScope {
  kSession,        // this conversation's turns
  kUserCharacter,  // one user's history with one character, across sessions
  kCharacter,      // the character's own canon, shared by every user (read-only)
};

}  // namespace troupe
