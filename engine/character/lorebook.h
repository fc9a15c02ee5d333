// Lorebook activation (Character Card V2/V3 character_book rules): which entries go into the
// next prompt, given the recent chat. Pure function; called by prompt preparation (worker pool).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/character/character_profile.h"

namespace troupe {

struct LoreOptions {
  int default_scan_depth = 2;  // when the book sets no scan_depth (SillyTavern's default)
  // Used when the book sets no token_budget (or 0); <= 0 here means unlimited.
  int default_token_budget = 2048;
  int max_recursion_steps = 3;  // rounds of recursive scanning after the first; 0 = none
  // true: constant entries still fire (and feed recursion) but the budget neither counts nor
  // drops them, for callers that render them elsewhere (e.g. in a cached preamble).
  bool budget_excludes_constant = false;
  // The session's point in story time: entries whose visible_from is later never fire, not
  // even constant ones. nullopt = no time gating.
  std::optional<StoryTime> point_in_time;
  // Tokens in a piece of text. Must be safe to call from the calling thread; null = bytes / 4,
  // rounded up. A negative count is read as 0.
  std::function<int(std::string_view)> count_tokens;
};

enum class LoreTrigger {
  kConstant,   // a constant entry
  kKey,        // a key matched the scanned messages
  kRecursion,  // a key matched the content of another activated entry
};

struct ActivatedLore {
  size_t entry_index = 0;  // into Lorebook::entries
  LorePosition position = LorePosition::kBeforeChar;
  int insertion_order = 0;
  int num_tokens = 0;
  LoreTrigger trigger = LoreTrigger::kKey;
  std::string content;  // copy of the entry's content, macros not substituted
};

// The entries of `book` to insert, ordered by insertion_order (ties: entry order).
//
// `recent_messages` is the chat, newest last; only the last scan_depth of them are scanned
// (the book's scan_depth, else options.default_scan_depth). An entry fires when:
//   - it is enabled and visible at options.point_in_time, and
//   - it is constant, or one of its keys occurs in a scanned message (plain keys: substring
//     match, ASCII case folded unless case_sensitive; use_regex keys: see LoreRegex, and a key
//     that does not compile never matches), and, for a selective entry with secondary keys,
//     one of those occurs too (a selective entry without secondary keys needs only a key).
// With the book's recursive_scanning, the content of entries that fired is scanned in turn,
// for up to options.max_recursion_steps rounds. Each entry fires at most once.
// Budget: if the fired entries' tokens exceed the token budget, entries are dropped lowest
// priority first (ties: the one inserted later first) until the rest fit. Constant entries
// compete like the others unless options.budget_excludes_constant.
std::vector<ActivatedLore> ActivateLore(const Lorebook& book,
                                        std::span<const std::string> recent_messages,
                                        const LoreOptions& options = {});

}  // namespace troupe
