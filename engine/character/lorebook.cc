#include "engine/character/lorebook.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "engine/character/lore_regex.h"

namespace troupe {
namespace {

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The texts keys are matched against: messages, then activated content. Each is kept as
// written and ASCII-lowercased, for case-insensitive plain keys.
struct ScanTexts {
  std::vector<std::string> texts;
  std::vector<std::string> folded;
  int64_t bytes = 0;  // of `texts`

  void Add(std::string_view text) {
    texts.emplace_back(text);
    folded.push_back(AsciiLower(text));
    bytes += static_cast<int64_t>(text.size());
  }
};

}  // namespace

// One entry's keys, prepared once (LoreKeys::Build).
class LoreKeyMatcher {
 public:
  explicit LoreKeyMatcher(const LoreEntry& entry)
      : case_sensitive_(entry.case_sensitive), use_regex_(entry.use_regex) {
    Prepare(entry.keys, &primary_, &primary_regex_);
    if (entry.selective) Prepare(entry.secondary_keys, &secondary_, &secondary_regex_);
    needs_secondary_ = entry.selective && !(secondary_.empty() && secondary_regex_.empty());
  }

  bool Matches(const ScanTexts& scan) const {
    if (broken_) return false;
    if (!AnyKey(primary_, primary_regex_, scan)) return false;
    return !needs_secondary_ || AnyKey(secondary_, secondary_regex_, scan);
  }

  // Keys one Matches call may search each scanned text with (0 for an entry that never fires).
  int64_t num_keys() const {
    if (broken_) return 0;
    return static_cast<int64_t>(primary_.size() + primary_regex_.size() +
                                (needs_secondary_ ? secondary_.size() + secondary_regex_.size() : 0));
  }

  int64_t approx_bytes() const {
    int64_t bytes = sizeof(*this);
    for (const auto* keys : {&primary_, &secondary_}) {
      for (const std::string& key : *keys) bytes += static_cast<int64_t>(key.size());
    }
    for (const auto* regexes : {&primary_regex_, &secondary_regex_}) {
      for (const LoreRegex& regex : *regexes) bytes += 16 * static_cast<int64_t>(regex.program_size());
    }
    return bytes;
  }

 private:
  void Prepare(const std::vector<std::string>& keys, std::vector<std::string>* plain,
               std::vector<LoreRegex>* regexes) {
    for (const std::string& key : keys) {
      if (key.empty()) continue;  // an empty key would match everything
      if (!use_regex_) {
        plain->push_back(case_sensitive_ ? key : AsciiLower(key));
        continue;
      }
      absl::StatusOr<LoreRegex> regex = LoreRegex::CompileKey(key, case_sensitive_);
      if (!regex.ok()) {
        broken_ = true;  // an entry with a key that does not compile never fires
        return;
      }
      regexes->push_back(*std::move(regex));
    }
  }

  bool AnyKey(const std::vector<std::string>& plain, const std::vector<LoreRegex>& regexes,
              const ScanTexts& scan) const {
    const std::vector<std::string>& haystacks = case_sensitive_ ? scan.texts : scan.folded;
    for (const std::string& key : plain) {
      for (const std::string& text : haystacks) {
        if (text.find(key) != std::string::npos) return true;
      }
    }
    for (const LoreRegex& regex : regexes) {
      for (const std::string& text : scan.texts) {
        if (regex.Search(text)) return true;
      }
    }
    return false;
  }

  bool case_sensitive_;
  bool use_regex_;
  bool needs_secondary_ = false;
  bool broken_ = false;
  std::vector<std::string> primary_, secondary_;
  std::vector<LoreRegex> primary_regex_, secondary_regex_;
};

std::shared_ptr<const LoreKeys> LoreKeys::Build(const Lorebook& book) {
  std::shared_ptr<LoreKeys> keys(new LoreKeys());
  keys->matchers_.reserve(book.entries.size());
  for (const LoreEntry& entry : book.entries) {
    auto matcher = std::make_unique<const LoreKeyMatcher>(entry);
    keys->approx_bytes_ += matcher->approx_bytes();
    keys->matchers_.push_back(std::move(matcher));
  }
  return keys;
}

LoreKeys::~LoreKeys() = default;

namespace {

bool Visible(const LoreEntry& entry, const LoreOptions& options) {
  return !entry.visible_from.has_value() || !options.point_in_time.has_value() ||
         entry.visible_from->ordinal <= options.point_in_time->ordinal;
}

int CountTokens(const LoreOptions& options, std::string_view text) {
  if (!options.count_tokens) return static_cast<int>((text.size() + 3) / 4);
  return std::max(0, options.count_tokens(text));
}

// Drops entries from `fired` (lowest priority first; ties: later insertion_order, then later
// entry) until their tokens fit `budget`. budget <= 0 = unlimited. With `exclude_constant`,
// constant entries are neither counted nor dropped.
void EnforceBudget(const Lorebook& book, int budget, bool exclude_constant,
                   std::vector<ActivatedLore>* fired) {
  if (budget <= 0) return;
  long long total = 0;
  std::vector<size_t> drop_order;  // the entries the budget applies to
  for (size_t i = 0; i < fired->size(); ++i) {
    const ActivatedLore& lore = (*fired)[i];
    if (exclude_constant && lore.trigger == LoreTrigger::kConstant) continue;
    total += lore.num_tokens;
    drop_order.push_back(i);
  }
  if (total <= budget) return;
  auto key = [&](size_t i) {
    const ActivatedLore& lore = (*fired)[i];
    return std::make_tuple(book.entries[lore.entry_index].priority, -lore.insertion_order,
                           -static_cast<long long>(lore.entry_index));
  };
  std::sort(drop_order.begin(), drop_order.end(),
            [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<bool> dropped(fired->size(), false);
  for (size_t i : drop_order) {
    if (total <= budget) break;
    dropped[i] = true;
    total -= (*fired)[i].num_tokens;
  }
  std::vector<ActivatedLore> kept;
  for (size_t i = 0; i < fired->size(); ++i) {
    if (!dropped[i]) kept.push_back(std::move((*fired)[i]));
  }
  *fired = std::move(kept);
}

}  // namespace

// Design: one pass over the messages decides the constant and key-matched entries; each
// recursion round then rescans messages plus everything activated so far (so a selective
// entry may find its primary key in chat and its secondary key in other lore), and stops
// early when a round activates nothing. Entries are searched in priority order and each
// search is charged to the scan budget before it runs, so the budget cuts off the least
// important entries and bounds the call's time. Budget and ordering come last.
std::vector<ActivatedLore> ActivateLore(const Lorebook& book,
                                        std::span<const std::string> recent_messages,
                                        const LoreOptions& options, LoreScanReport* report) {
  const int scan_depth = std::max(0, book.scan_depth.value_or(options.default_scan_depth));
  ScanTexts scan;
  const size_t first =
      recent_messages.size() - std::min(recent_messages.size(), static_cast<size_t>(scan_depth));
  for (size_t i = first; i < recent_messages.size(); ++i) scan.Add(recent_messages[i]);

  const size_t num_entries = book.entries.size();
  std::shared_ptr<const LoreKeys> built;
  const LoreKeys* keys = options.keys;
  if (keys == nullptr || keys->size() != num_entries) {
    built = LoreKeys::Build(book);
    keys = built.get();
  }
  std::vector<bool> fired(num_entries, false);
  std::vector<ActivatedLore> activated;
  auto fire = [&](size_t i, LoreTrigger trigger) {
    const LoreEntry& entry = book.entries[i];
    fired[i] = true;
    activated.push_back({i, entry.position, entry.insertion_order,
                         CountTokens(options, entry.content), trigger, entry.content});
  };

  // The entries to search, most important first.
  std::vector<size_t> order;
  for (size_t i = 0; i < num_entries; ++i) {
    const LoreEntry& entry = book.entries[i];
    if (!entry.enabled || !Visible(entry, options)) continue;
    if (entry.constant) {
      fire(i, LoreTrigger::kConstant);
    } else {
      order.push_back(i);
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const LoreEntry& x = book.entries[a];
    const LoreEntry& y = book.entries[b];
    return std::make_tuple(-static_cast<int64_t>(x.priority), x.insertion_order, a) <
           std::make_tuple(-static_cast<int64_t>(y.priority), y.insertion_order, b);
  });

  LoreScanReport local_report;
  LoreScanReport& scanned_report = report != nullptr ? *report : local_report;
  scanned_report = {};
  std::vector<bool> searched(num_entries, false), skipped(num_entries, false);
  bool exhausted = false;
  // One search pass over the entries not fired yet, charged to the budget.
  auto search = [&](LoreTrigger trigger) {
    for (size_t i : order) {
      if (fired[i]) continue;
      const LoreKeyMatcher& matcher = keys->matcher(i);
      const int64_t cost = matcher.num_keys() * scan.bytes;
      if (exhausted || (options.scan_budget > 0 && scanned_report.key_bytes + cost > options.scan_budget)) {
        exhausted = true;
        skipped[i] = true;
        continue;
      }
      scanned_report.key_bytes += cost;
      searched[i] = true;
      if (matcher.Matches(scan)) fire(i, trigger);
    }
  };
  search(LoreTrigger::kKey);

  if (book.recursive_scanning) {
    size_t scanned = 0;  // activated entries whose content is already in `scan`
    for (int step = 0; step < options.max_recursion_steps && scanned < activated.size(); ++step) {
      for (; scanned < activated.size(); ++scanned) scan.Add(activated[scanned].content);
      const size_t before = activated.size();
      search(LoreTrigger::kRecursion);
      if (activated.size() == before) break;
    }
  }
  for (size_t i = 0; i < num_entries; ++i) {
    scanned_report.entries_scanned += searched[i] ? 1 : 0;
    scanned_report.entries_skipped += skipped[i] && !fired[i] ? 1 : 0;
  }

  const int budget =
      book.token_budget.value_or(0) > 0 ? *book.token_budget : options.default_token_budget;
  EnforceBudget(book, budget, options.budget_excludes_constant, &activated);
  std::stable_sort(activated.begin(), activated.end(),
                   [](const ActivatedLore& a, const ActivatedLore& b) {
                     return std::tie(a.insertion_order, a.entry_index) <
                            std::tie(b.insertion_order, b.entry_index);
                   });
  return activated;
}

}  // namespace troupe
