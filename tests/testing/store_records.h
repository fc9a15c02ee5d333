// Records for the Store tests (tests/engine/store): a character, a session, a turn and a memory
// with every field set, in the tenant kTenant unless a test names another.
#pragma once

#include <optional>
#include <string>

#include "engine/store/store.h"

namespace troupe::testing {

// The tenant the single-tenant tests store under (the cross-tenant tests use others).
inline const std::string kTenant = "acme";

inline CharacterRecord Character(const std::string& id) {
  return {.id = id, .card_json = R"({"spec":"chara_card_v3","data":{"name":")" + id + R"("}})",
          .create_time_ms = 1000, .update_time_ms = 1000};
}

inline SessionRecord SessionOf(const std::string& id, const std::string& character_id) {
  return {.tenant = "", .id = id, .character_id = character_id, .user_id = "u1", .setup_json = "{}",
          .mood = {5, 5, 1, 1, 1, 1, 1, 5}, .create_time_ms = 2000};
}

inline TurnRecord Turn(const std::string& session_id, int index, const std::string& user = "u",
                       const std::string& reply = "r", int64_t time_ms = 0) {
  TurnRecord t;
  t.session_id = session_id;
  t.turn_index = index;
  t.user_text = user;
  t.context_text = "ctx " + user;
  t.reply_text = reply;
  t.time_ms = time_ms;
  return t;
}

inline MemoryRecord Memory(MemoryScope scope, const std::string& session_id, int turn) {
  return {.tenant = "", .id = 0, .scope = scope, .character_id = "c1", .user_id = "u1", .session_id = session_id,
          .turn_index = turn, .text = "user: hi\nchar: hello " + std::to_string(turn),
          .embedding = {0.6f, 0.8f, 0.0f}, .emotion = {9, 2, 1, 3, 1, 1, 1, 4},
          .importance = 7, .wall_time_ms = 3000 + turn, .story_time = std::nullopt};
}

}  // namespace troupe::testing
