// A finished chat turn for the SessionStore tests: the user's message and the reply, nothing
// else (no context message, no context tokens, no summary).
#pragma once

#include <string>
#include <utility>

#include "engine/session/session_store.h"

namespace troupe::testing {

inline SessionStore::Turn TurnOf(std::string user, std::string reply) {
  SessionStore::Turn t;
  t.user_message = std::move(user);
  t.reply = std::move(reply);
  return t;
}

}  // namespace troupe::testing
