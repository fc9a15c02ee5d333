#include "engine/character/lorebook.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/character/character_card.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

LoreEntry Entry(std::vector<std::string> keys, std::string content, int insertion_order = 0) {
  LoreEntry e;
  e.keys = std::move(keys);
  e.content = std::move(content);
  e.insertion_order = insertion_order;
  return e;
}

// The contents of the activated entries, in the order returned.
std::vector<std::string> Contents(const std::vector<ActivatedLore>& lore) {
  std::vector<std::string> out;
  for (const ActivatedLore& a : lore) out.push_back(a.content);
  return out;
}

std::vector<std::string> Activate(const Lorebook& book, std::vector<std::string> chat,
                                  const LoreOptions& options = {}) {
  return Contents(ActivateLore(book, chat, options));
}

using Strings = std::vector<std::string>;

TEST(LorebookTest, KeyAnywhereInAMessageActivatesTheEntry) {
  Lorebook book;
  book.entries = {Entry({"dragon"}, "Dragons hoard gold."), Entry({"elf"}, "Elves live long.")};
  EXPECT_EQ(Activate(book, {"A DRAGON circles overhead"}), Strings{"Dragons hoard gold."});
  // Whole-substring match: "elf" inside "herself" counts.
  EXPECT_EQ(Activate(book, {"she hid it herself"}), Strings{"Elves live long."});
  EXPECT_TRUE(Activate(book, {"nothing relevant"}).empty());
  EXPECT_TRUE(Activate(book, {}).empty());
}

TEST(LorebookTest, CaseSensitivityIsPerEntry) {
  Lorebook book;
  book.entries = {Entry({"Mark"}, "Mark is a smith."), Entry({"Rose"}, "Rose is a healer.")};
  book.entries[0].case_sensitive = true;
  EXPECT_EQ(Activate(book, {"put a mark on the map, rose"}), Strings{"Rose is a healer."});
  EXPECT_EQ(Activate(book, {"Mark waved"}), Strings{"Mark is a smith."});
}

TEST(LorebookTest, ScansOnlyTheLastScanDepthMessages) {
  Lorebook book;
  book.entries = {Entry({"castle"}, "The castle is ruined.")};
  //            oldest                                           newest
  const Strings chat = {"we saw the castle", "then we rested", "and then we ate"};
  book.scan_depth = 2;
  EXPECT_TRUE(Activate(book, chat).empty());
  book.scan_depth = 3;
  EXPECT_EQ(Activate(book, chat).size(), 1u);
  book.scan_depth = 0;  // only constant entries can fire
  EXPECT_TRUE(Activate(book, chat).empty());
  // Without a book setting the option's default (2) applies.
  book.scan_depth.reset();
  EXPECT_TRUE(Activate(book, chat).empty());
  LoreOptions options;
  options.default_scan_depth = 10;
  EXPECT_EQ(Activate(book, chat, options).size(), 1u);
}

TEST(LorebookTest, SelectiveNeedsAPrimaryAndASecondaryKey) {
  Lorebook book;
  LoreEntry bridge = Entry({"village"}, "The bridge washes out in spring.");
  bridge.selective = true;
  bridge.secondary_keys = {"bridge", "road"};
  book.entries = {bridge};
  EXPECT_TRUE(Activate(book, {"how far is the village?"}).empty());
  EXPECT_TRUE(Activate(book, {"is the road safe?"}).empty());
  EXPECT_EQ(Activate(book, {"which road leads to the village?"}).size(), 1u);
  // The two keys may sit in different scanned messages.
  EXPECT_EQ(Activate(book, {"the village", "the bridge"}).size(), 1u);
  // Selective without secondary keys behaves like a plain entry (as SillyTavern does).
  book.entries[0].secondary_keys.clear();
  EXPECT_EQ(Activate(book, {"how far is the village?"}).size(), 1u);
}

TEST(LorebookTest, ConstantEntriesAlwaysFireAndDisabledNever) {
  Lorebook book;
  LoreEntry weather = Entry({}, "It is always raining.");
  weather.constant = true;
  LoreEntry off = Entry({"rain"}, "Disabled entry.");
  off.enabled = false;
  LoreEntry off_constant = weather;
  off_constant.content = "Disabled constant.";
  off_constant.enabled = false;
  book.entries = {weather, off, off_constant};
  const std::vector<ActivatedLore> lore = ActivateLore(book, Strings{"rain again"});
  ASSERT_EQ(lore.size(), 1u);
  EXPECT_EQ(lore[0].content, "It is always raining.");
  EXPECT_EQ(lore[0].trigger, LoreTrigger::kConstant);
  EXPECT_EQ(lore[0].entry_index, 0u);
}

TEST(LorebookTest, EmptyKeysNeverMatch) {
  Lorebook book;
  book.entries = {Entry({"", "  x"}, "never")};
  EXPECT_TRUE(Activate(book, {"anything at all"}).empty());
}

TEST(LorebookTest, ReturnsEntriesByInsertionOrderWithPositions) {
  Lorebook book;
  book.entries = {Entry({"a"}, "third", 30), Entry({"a"}, "first", 10),
                  Entry({"a"}, "second (tie, earlier entry)", 20),
                  Entry({"a"}, "second (tie, later entry)", 20)};
  book.entries[1].position = LorePosition::kAfterChar;
  const std::vector<ActivatedLore> lore = ActivateLore(book, Strings{"a"});
  EXPECT_EQ(Contents(lore), (Strings{"first", "second (tie, earlier entry)",
                                     "second (tie, later entry)", "third"}));
  EXPECT_EQ(lore[0].position, LorePosition::kAfterChar);
  EXPECT_EQ(lore[1].position, LorePosition::kBeforeChar);
  EXPECT_EQ(lore[0].entry_index, 1u);
}

TEST(LorebookTest, RegexKeys) {
  Lorebook book;
  LoreEntry gears = Entry({"\\bgears?\\b"}, "gears");
  gears.use_regex = true;
  LoreEntry vault = Entry({"/archive (room|vault)/i"}, "vault");
  vault.use_regex = true;
  vault.case_sensitive = true;  // the i flag wins
  LoreEntry exact = Entry({"^Quill$"}, "exact");
  exact.use_regex = true;
  exact.case_sensitive = true;
  book.entries = {gears, vault, exact};
  EXPECT_EQ(Activate(book, {"The GEAR turns"}), Strings{"gears"});
  EXPECT_TRUE(Activate(book, {"gearbox"}).empty());  // \b
  EXPECT_EQ(Activate(book, {"Open the ARCHIVE VAULT"}), Strings{"vault"});
  // Anchors hold per message, not across the scanned window.
  EXPECT_EQ(Activate(book, {"hello", "Quill"}), Strings{"exact"});
  EXPECT_TRUE(Activate(book, {"quill"}).empty());
  // A plain (non-regex) entry with the same text only matches it literally.
  book.entries[0].use_regex = false;
  EXPECT_TRUE(Activate(book, {"gears"}).empty());
  EXPECT_EQ(Activate(book, {"look: \\bgears?\\b"}), Strings{"gears"});
}

TEST(LorebookTest, InvalidRegexNeverFiresAndNeverCrashes) {
  Lorebook book;
  for (const char* key : {"([unclosed", "a{2,1}", "(?=look)ahead", "(a)\\1", "*star"}) {
    LoreEntry e = Entry({key, "valid"}, key);
    e.use_regex = true;
    book.entries.push_back(e);
  }
  EXPECT_TRUE(Activate(book, {"valid ([unclosed lookahead aa *star"}).empty());
}

TEST(LorebookTest, PathologicalRegexOnLongChatStaysLinear) {
  // std::regex overflows the stack on this (one recursion per character); RE2 must not.
  Lorebook book;
  LoreEntry e = Entry({"(a|b)*c"}, "found");
  e.use_regex = true;
  book.entries = {e};
  const std::string long_message(200000, 'a');
  EXPECT_TRUE(Activate(book, {long_message}).empty());
  EXPECT_EQ(Activate(book, {long_message + "c"}), Strings{"found"});
}

TEST(LorebookTest, RecursionLetsContentTriggerOtherEntries) {
  Lorebook book;
  book.entries = {Entry({"king"}, "The king fears the duke.", 1),
                  Entry({"duke"}, "The duke hides in the tower.", 2),
                  Entry({"tower"}, "The tower has no stairs.", 3)};
  const Strings chat = {"tell me about the king"};
  // Without recursive scanning only the chat counts.
  EXPECT_EQ(Activate(book, chat), Strings{"The king fears the duke."});
  book.recursive_scanning = true;
  const std::vector<ActivatedLore> lore = ActivateLore(book, chat);
  EXPECT_EQ(Contents(lore), (Strings{"The king fears the duke.", "The duke hides in the tower.",
                                     "The tower has no stairs."}));
  EXPECT_EQ(lore[0].trigger, LoreTrigger::kKey);
  EXPECT_EQ(lore[1].trigger, LoreTrigger::kRecursion);
  // Depth is bounded: one recursion round reaches the duke but not the tower.
  LoreOptions options;
  options.max_recursion_steps = 1;
  EXPECT_EQ(Activate(book, chat, options).size(), 2u);
  options.max_recursion_steps = 0;
  EXPECT_EQ(Activate(book, chat, options).size(), 1u);
}

TEST(LorebookTest, RecursionWithCyclesActivatesEachEntryOnce) {
  Lorebook book;
  book.recursive_scanning = true;
  book.entries = {Entry({"ping"}, "ping pong"), Entry({"pong"}, "pong ping")};
  LoreOptions options;
  options.max_recursion_steps = 100;
  EXPECT_EQ(Activate(book, {"ping"}, options).size(), 2u);
}

TEST(LorebookTest, OverBudgetDropsLowestPriorityFirst) {
  // Token count: one token per word.
  LoreOptions options;
  options.count_tokens = [](std::string_view text) {
    int words = 1;
    for (char c : text) words += c == ' ';
    return words;
  };
  Lorebook book;
  book.entries = {Entry({"x"}, "a b c d", 1), Entry({"x"}, "e f", 2), Entry({"x"}, "g h i", 3),
                  Entry({"x"}, "j", 4)};
  book.entries[0].priority = 1;  // 4 tokens, dropped first
  book.entries[1].priority = 9;  // 2 tokens
  book.entries[2].priority = 5;  // 3 tokens
  book.entries[3].priority = 5;  // 1 token; ties drop the later insertion_order first
  book.token_budget = 10;
  EXPECT_EQ(Activate(book, {"x"}, options).size(), 4u);  // 10 tokens fit exactly
  book.token_budget = 9;
  EXPECT_EQ(Activate(book, {"x"}, options), (Strings{"e f", "g h i", "j"}));
  book.token_budget = 5;
  EXPECT_EQ(Activate(book, {"x"}, options), (Strings{"e f", "g h i"}));
  book.token_budget = 4;
  EXPECT_EQ(Activate(book, {"x"}, options), (Strings{"e f"}));
  book.token_budget = 1;
  EXPECT_TRUE(Activate(book, {"x"}, options).empty());
}

TEST(LorebookTest, BudgetDefaultsCountBytesOverFour) {
  Lorebook book;
  book.entries = {Entry({"x"}, std::string(9, 'a'), 1), Entry({"x"}, std::string(8, 'b'), 2)};
  book.entries[0].priority = 2;
  LoreOptions options;
  options.default_token_budget = 5;  // 9 bytes = 3 tokens, 8 bytes = 2 tokens
  EXPECT_EQ(Activate(book, {"x"}, options).size(), 2u);
  options.default_token_budget = 4;
  EXPECT_EQ(Activate(book, {"x"}, options), Strings{std::string(9, 'a')});
  const std::vector<ActivatedLore> lore = ActivateLore(book, Strings{"x"}, options);
  EXPECT_EQ(lore[0].num_tokens, 3);
  options.default_token_budget = 0;  // unlimited
  EXPECT_EQ(Activate(book, {"x"}, options).size(), 2u);
}

TEST(LorebookTest, ConstantEntriesCompeteForBudgetByPriority) {
  Lorebook book;
  LoreEntry constant = Entry({}, std::string(40, 'c'));
  constant.constant = true;
  constant.priority = 0;
  LoreEntry keyed = Entry({"x"}, std::string(40, 'k'));
  keyed.priority = 3;
  book.entries = {constant, keyed};
  book.token_budget = 10;
  EXPECT_EQ(Activate(book, {"x"}), Strings{std::string(40, 'k')});
  // A caller that renders constants elsewhere keeps them out of the budget.
  LoreOptions options;
  options.budget_excludes_constant = true;
  EXPECT_EQ(Activate(book, {"x"}, options), (Strings{std::string(40, 'c'), std::string(40, 'k')}));
  book.token_budget = 9;  // the constant stays even when nothing else fits
  EXPECT_EQ(Activate(book, {"x"}, options), Strings{std::string(40, 'c')});
}

TEST(LorebookTest, VisibleFromHidesEntriesLaterInTheStory) {
  Lorebook book;
  LoreEntry spoiler = Entry({"library"}, "The library burned in Act III.");
  spoiler.visible_from = StoryTime{300, "Act III"};
  LoreEntry constant_spoiler = Entry({}, "Constant spoiler.");
  constant_spoiler.constant = true;
  constant_spoiler.visible_from = StoryTime{300, "Act III"};
  book.entries = {spoiler, constant_spoiler, Entry({"library"}, "The library is vast.")};
  const Strings chat = {"take me to the library"};
  LoreOptions options;
  options.point_in_time = StoryTime{100, "Act I"};
  EXPECT_EQ(Activate(book, chat, options), Strings{"The library is vast."});
  options.point_in_time = StoryTime{300, "Act III"};
  EXPECT_EQ(Activate(book, chat, options).size(), 3u);
  options.point_in_time.reset();  // no time gating
  EXPECT_EQ(Activate(book, chat, options).size(), 3u);
}

TEST(LorebookTest, ImportedCardLorebookActivates) {
  std::ifstream in(std::string(TROUPE_SOURCE_DIR) +
                   "/tests/testdata/cards/v3_clockwork_archivist.json");
  std::stringstream text;
  text << in.rdbuf();
  const absl::StatusOr<CharacterProfile> quill = ParseCharacterCard(text.str());
  ASSERT_TRUE(quill.ok()) << quill.status();
  LoreOptions options;
  options.point_in_time = StoryTime{100, "Act I"};
  const Strings chat = {"Wind the gears, then check the Ledger.", "Is the archive vault open?"};
  const std::vector<ActivatedLore> lore = ActivateLore(*quill->lorebook, chat, options);
  // The broken regex entry and the Act III constant stay out; the rest by insertion order.
  EXPECT_EQ(Contents(lore), (Strings{"Quill's gears are wound each dawn by the head librarian.",
                                     "The archive vault is sealed with a seven-tumbler lock.",
                                     "The Ledger lists every visitor since the Library opened."}));
  EXPECT_EQ(lore[1].position, LorePosition::kAfterChar);
}

// ---- the per-turn scan budget and prepared keys ----

// Four entries whose keys all occur in a 100-byte message, each key costing 100 key-bytes.
Lorebook BudgetBook() {
  Lorebook book;
  book.entries = {Entry({"alpha"}, "A", 0), Entry({"beta"}, "B", 2), Entry({"gamma"}, "C", 0),
                  Entry({"delta"}, "D", 1)};
  book.entries[0].priority = 1;
  book.entries[1].priority = 5;
  book.entries[2].priority = 3;
  book.entries[3].priority = 5;  // ties with B; lower insertion_order, so searched first
  return book;
}

std::string HundredBytes() {
  std::string text = "alpha beta gamma delta ";
  text.resize(100, '.');
  return text;
}

TEST(LorebookTest, ScanBudgetSkipsTheLowestPriorityEntriesAndSaysSo) {
  const Lorebook book = BudgetBook();
  const Strings chat = {HundredBytes()};
  LoreOptions options;
  options.scan_budget = 250;  // two searches of 100 key-bytes fit, the third does not
  LoreScanReport report;
  const std::vector<ActivatedLore> fired = ActivateLore(book, chat, options, &report);
  EXPECT_EQ(Contents(fired), (Strings{"D", "B"}));  // by insertion_order: D (1), B (2)
  EXPECT_EQ(report.entries_scanned, 2);
  EXPECT_EQ(report.entries_skipped, 2);  // gamma (priority 3) and alpha (priority 1)
  EXPECT_EQ(report.key_bytes, 200);

  options.scan_budget = 0;  // unlimited
  EXPECT_EQ(Contents(ActivateLore(book, chat, options, &report)), (Strings{"A", "C", "D", "B"}));
  EXPECT_EQ(report.entries_scanned, 4);
  EXPECT_EQ(report.entries_skipped, 0);
  EXPECT_EQ(report.key_bytes, 400);
}

TEST(LorebookTest, ConstantEntriesCostNothingAndRecursionDrawsOnTheSameBudget) {
  Lorebook book;
  book.recursive_scanning = true;
  book.entries = {Entry({}, "the tower", 0), Entry({"tower"}, "a bell rings", 1), Entry({"bell"}, "ravens", 2)};
  book.entries[0].constant = true;
  const Strings chat = {std::string(50, '.')};
  LoreOptions options;
  // First pass: 2 keys x 50 bytes = 100. Round one adds "the tower" (9 bytes): entry 1 searches
  // 59 bytes, fits (159) and fires; entry 2 over the same 59 would pass 200, so it is skipped.
  options.scan_budget = 200;
  LoreScanReport report;
  EXPECT_EQ(Activate(book, chat, options), (Strings{"the tower", "a bell rings"}));
  ActivateLore(book, chat, options, &report);
  EXPECT_EQ(report.entries_skipped, 1);
  options.scan_budget = 0;
  EXPECT_EQ(Activate(book, chat, options), (Strings{"the tower", "a bell rings", "ravens"}));
}

TEST(LorebookTest, PreparedKeysMatchLikeKeysPreparedPerCall) {
  Lorebook book;
  book.entries = {Entry({"/drag(on|oons)/i"}, "Dragons."), Entry({"elf"}, "Elves."),
                  Entry({"/(unclosed/"}, "Never."), Entry({"\\bOrc\\b"}, "Orcs.")};
  book.entries[0].use_regex = true;
  book.entries[2].use_regex = true;
  book.entries[3].use_regex = true;
  book.entries[3].case_sensitive = true;
  const std::shared_ptr<const LoreKeys> keys = LoreKeys::Build(book);
  ASSERT_EQ(keys->size(), 4u);
  EXPECT_GT(keys->approx_bytes(), 0);
  LoreOptions prepared;
  prepared.keys = keys.get();
  for (const Strings& chat : {Strings{"A DRAGON and an Orc"}, Strings{"herself, orcish"}, Strings{"nothing"}}) {
    EXPECT_EQ(Activate(book, chat, prepared), Activate(book, chat)) << chat[0];
  }
  EXPECT_EQ(Activate(book, {"A DRAGON and an Orc"}, prepared), (Strings{"Dragons.", "Orcs."}));
}

}  // namespace
}  // namespace troupe
