// Lorebook activation (Character Card V2/V3 character_book rules): which entries go into the
// next prompt, given the recent chat. Pure function; called by prompt preparation (worker pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/character/character_profile.h"

namespace troupe {

// One turn's scan budget, in key-bytes: every key searched over every byte of the scanned
// texts costs one (regex and plain keys alike: both searches are linear in the text). A real
// book (1000 entries of 3 keys over 4 messages of 2 KiB) needs 24 Mi; the worst a client can
// build (1000 entries of long regex keys over 64 messages of 64 KiB) would need 4000 Mi, about
// 15 s of CPU per turn; the budget holds a turn near 0.45 s (docs/benchmarks.md, bench_lorebook).
inline constexpr int64_t kDefaultLoreScanBudget = int64_t{128} << 20;

class LoreKeyMatcher;  // one entry's keys, prepared (lorebook.cc)

// A lorebook's keys prepared for matching once: regex keys compiled (LoreRegex), plain keys
// case-folded. CharacterRegistry keeps one with each stored character, so turns stop compiling
// every regex key again. Immutable after Build; safe for concurrent ActivateLore calls.
class LoreKeys {
 public:
  static std::shared_ptr<const LoreKeys> Build(const Lorebook& book);
  ~LoreKeys();
  LoreKeys(const LoreKeys&) = delete;
  LoreKeys& operator=(const LoreKeys&) = delete;

  size_t size() const { return matchers_.size(); }  // the book's entry count
  const LoreKeyMatcher& matcher(size_t entry_index) const { return *matchers_[entry_index]; }
  // Memory held, estimated: key texts plus 16 bytes per compiled regex instruction.
  int64_t approx_bytes() const { return approx_bytes_; }

 private:
  LoreKeys() = default;
  std::vector<std::unique_ptr<const LoreKeyMatcher>> matchers_;  // one per entry
  int64_t approx_bytes_ = 0;
};

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
  // The most key-bytes (see kDefaultLoreScanBudget) one call searches. Entries are searched in
  // priority order (highest priority first; ties: lower insertion_order, then entry order);
  // the first entry whose keys would pass the budget is skipped with every entry after it, and
  // the turn goes on with what fired. Recursion rounds draw on the same budget. <= 0 = none.
  int64_t scan_budget = kDefaultLoreScanBudget;
  // The book's keys prepared by LoreKeys::Build (must be of this very book); null = prepared
  // by the call itself.
  const LoreKeys* keys = nullptr;
};

// What a call searched. entries_skipped > 0 means the scan budget ran out: lower-priority
// entries were not searched and did not fire.
struct LoreScanReport {
  int entries_scanned = 0;  // entries whose keys were searched (at least once)
  int entries_skipped = 0;  // entries left unsearched by the budget (and so not fired)
  int64_t key_bytes = 0;    // work done, in key-bytes
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
// Scan budget: see LoreOptions::scan_budget; `report` (may be null) says what was searched.
std::vector<ActivatedLore> ActivateLore(const Lorebook& book,
                                        std::span<const std::string> recent_messages,
                                        const LoreOptions& options = {},
                                        LoreScanReport* report = nullptr);

}  // namespace troupe
