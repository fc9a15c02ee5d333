// bench_lorebook: the cost of one turn's lorebook scan (ActivateLore) in the worst case a
// client can set up: many entries with long regex keys that never match, scanned over the
// deepest history a turn looks at. Prints the time of the first turn (keys compiled on the way)
// and the mean of the following turns, as wall time and as this process's CPU time (the shared
// development VMs are often loaded several times over, and CPU time is what a turn costs).
//   bench_lorebook [--entries 1000] [--messages 64] [--message-kib 64] [--turns 3] [--plain]
//                  [--prepared=false] [--budget-mib 128]
#include <chrono>
#include <ctime>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/flag_parser.h"
#include "engine/character/lorebook.h"

namespace troupe {
namespace {

std::string Word(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(3, 9), letter(0, 25);
  std::string w(length(rng), 'a');
  for (char& c : w) c = static_cast<char>('a' + letter(rng));
  return w;
}

// A key of about 1 KiB: a word-bounded alternation of 100 words ending in a digit, which
// ordinary chat (lower-case words without digits) never matches, so every byte is scanned.
std::string LongRegexKey(std::mt19937& rng) {
  std::string key = "\\b(?:";
  for (int i = 0; i < 100; ++i) key += absl::StrCat(i ? "|" : "", Word(rng), i % 10);
  return key + ")\\b";
}

struct Clocks {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  std::clock_t cpu = std::clock();
  double WallSince() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(); }
  double CpuSince() const { return static_cast<double>(std::clock() - cpu) / CLOCKS_PER_SEC; }
};

int Run(int argc, char** argv) {
  int entries = 1000, messages = 64, message_kib = 64, turns = 3;
  bool plain = false, prepared = true;
  int64_t budget_mib = kDefaultLoreScanBudget >> 20;
  FlagParser parser;
  parser.AddInt("entries", &entries, "lorebook entries");
  parser.AddInt("messages", &messages, "messages scanned (the book's scan_depth)");
  parser.AddInt("message-kib", &message_kib, "KiB per message");
  parser.AddInt("turns", &turns, "turns timed after the first");
  parser.AddBool("plain", &plain, "plain (substring) keys instead of regex keys");
  parser.AddBool("prepared", &prepared, "keys prepared once (LoreKeys), as the server does; =false: per turn");
  parser.AddInt64("budget-mib", &budget_mib, "scan budget in Mi key-bytes (0 = unlimited)");
  std::vector<std::string> positional;
  if (absl::Status parsed = parser.Parse(argc, argv, &positional); !parsed.ok()) {
    std::fprintf(stderr, "bench_lorebook: %s\n%s", std::string(parsed.message()).c_str(), parser.Help().c_str());
    return 2;
  }

  std::mt19937 rng(7);
  Lorebook book;
  book.scan_depth = messages;
  book.token_budget = 1 << 20;
  for (int i = 0; i < entries; ++i) {
    LoreEntry e;
    e.keys = {plain ? absl::StrCat(Word(rng), Word(rng), i, "z") : LongRegexKey(rng)};
    e.use_regex = !plain;
    e.content = absl::StrCat("entry ", i);
    e.insertion_order = i;
    e.priority = i % 10;
    book.entries.push_back(std::move(e));
  }
  std::vector<std::string> chat(messages);
  for (std::string& m : chat) {
    while (m.size() < static_cast<size_t>(message_kib) << 10) m += Word(rng) + " ";
    m.resize(static_cast<size_t>(message_kib) << 10);
  }
  const double scanned_mib = static_cast<double>(messages) * message_kib / 1024;

  LoreOptions options;
  options.scan_budget = budget_mib << 20;
  LoreScanReport report;
  Clocks start;
  std::shared_ptr<const LoreKeys> keys;
  if (prepared) {
    keys = LoreKeys::Build(book);  // when the character is loaded: timed with the first turn
    options.keys = keys.get();
  }
  std::vector<ActivatedLore> fired = ActivateLore(book, chat, options, &report);
  const double first_wall = start.WallSince(), first_cpu = start.CpuSince();
  start = Clocks();
  for (int t = 0; t < turns; ++t) fired = ActivateLore(book, chat, options, &report);
  const double mean_wall = turns > 0 ? start.WallSince() / turns : 0;
  const double mean_cpu = turns > 0 ? start.CpuSince() / turns : 0;
  std::printf("bench_lorebook: %d %s entries x %d messages of %d KiB (%.0f MiB scanned per key), keys %s, "
              "budget %lld Mi key-bytes\n", entries, plain ? "plain-key" : "regex-key", messages, message_kib,
              scanned_mib, prepared ? "prepared once" : "prepared per turn", static_cast<long long>(budget_mib));
  std::printf("  first turn (keys compiled): %.3f s CPU, %.3f s wall\n", first_cpu, first_wall);
  std::printf("  later turns (mean of %d):   %.3f s CPU, %.3f s wall\n", turns, mean_cpu, mean_wall);
  std::printf("  entries fired %zu, scanned %d, skipped over the scan budget %d\n", fired.size(),
              report.entries_scanned, report.entries_skipped);
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) { return troupe::Run(argc, argv); }
