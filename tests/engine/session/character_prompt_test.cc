#include "engine/session/character_prompt.h"

#include "engine/character/character_card.h"
#include "gtest/gtest.h"
#include "tests/testing/testdata.h"

namespace troupe {
namespace {

LoreEntry Lore(const std::string& content, bool constant, LorePosition position,
               std::optional<StoryTime> visible_from = std::nullopt, std::vector<std::string> keys = {}) {
  LoreEntry e;
  e.content = content;
  e.constant = constant;
  e.position = position;
  e.visible_from = visible_from;
  e.keys = std::move(keys);
  return e;
}

Experience Exp(const std::string& text, StoryTime when) {
  Experience e;
  e.text = text;
  e.when = when;
  return e;
}

ActivatedLore Fired(size_t index, LoreTrigger trigger, const std::string& content) {
  ActivatedLore a;
  a.entry_index = index;
  a.trigger = trigger;
  a.content = content;
  return a;
}

CharacterProfile Captain() {
  CharacterProfile p;
  p.name = "Captain Mara";
  p.description = "{{char}} commands the Gull, a patched schooner. She distrusts {{user}} at first.";
  p.personality = "gruff, loyal";
  p.scenario = "The harbour of Vell at dusk.";
  p.first_message = "*{{char}} looks up.* Who let you aboard, {{user}}?";
  p.alternate_greetings = {"Another one for the crew, {{user}}?"};
  p.system_prompt = "{{original}} Stay in character.";
  p.post_history_instructions = "Answer as {{char}} in two sentences.";
  p.creator = "someone";
  p.creator_notes = "SECRET CREATOR NOTE";
  p.tags = {"SECRET-TAG"};
  p.identity.occupation = "ship captain";
  p.interests = {"charts", "rum"};
  p.experiences = {Exp("Lost her first ship in the Narrows.", StoryTime{100, "Year 1"}),
                   Exp("Becomes admiral.", StoryTime{900, "Year 9"})};
  p.behaviour.catchphrases = {"Steady as she goes."};
  ExampleDialogue example;
  example.turns = {{"{{user}}", "Where are we headed?"}, {"{{char}}", "North. Always north."}};
  p.example_dialogues = {example};
  Lorebook book;
  LoreEntry before = Lore("Vell is a free port.", true, LorePosition::kBeforeChar);
  before.insertion_order = 1;
  LoreEntry after = Lore("The Narrows are deadly.", true, LorePosition::kAfterChar);
  LoreEntry later = Lore("The admiralty fell.", true, LorePosition::kAfterChar, StoryTime{800, ""});
  LoreEntry keyed = Lore("Krakens hunt at night.", false, LorePosition::kBeforeChar, std::nullopt, {"kraken"});
  book.entries = {before, after, later, keyed};
  p.lorebook = book;
  return p;
}

CharacterPromptOptions Options(const std::string& system) {
  CharacterPromptOptions o;
  o.global_system_prompt = system;
  return o;
}
CharacterPromptOptions NoExamples() {
  CharacterPromptOptions o;
  o.include_examples = false;
  return o;
}
CharacterPromptOptions PostHistory(const std::string& post) {
  CharacterPromptOptions o;
  o.global_post_history = post;
  return o;
}

SessionSetup AshSetup() {
  SessionSetup s;
  s.user_name = "Ash";
  s.point_in_time = StoryTime{500, "Year 5"};
  return s;
}

TEST(CharacterPromptTest, PreambleRendersProfileWithMacrosAndNoProvenance) {
  const std::vector<ChatMessage> m = BuildCharacterPreamble(Captain(), AshSetup(), Options("You are a role-play partner."));
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].role, "system");
  const std::string& s = m[0].content;
  EXPECT_EQ(s.rfind("You are a role-play partner. Stay in character.", 0), 0u) << s;
  EXPECT_NE(s.find("Captain Mara commands the Gull"), std::string::npos);
  EXPECT_NE(s.find("She distrusts Ash at first."), std::string::npos);
  EXPECT_NE(s.find("Occupation: ship captain"), std::string::npos);
  EXPECT_NE(s.find("Interests: charts; rum"), std::string::npos);
  EXPECT_NE(s.find("Catchphrases: Steady as she goes."), std::string::npos);
  EXPECT_NE(s.find("Ash: Where are we headed?\nCaptain Mara: North. Always north."), std::string::npos);
  for (const ChatMessage& msg : m) {
    EXPECT_EQ(msg.content.find("SECRET"), std::string::npos) << msg.content;
    EXPECT_EQ(msg.content.find("{{"), std::string::npos) << msg.content;
  }
  EXPECT_EQ(m[1].role, "system");
  EXPECT_NE(m[1].content.find("Scenario: The harbour of Vell at dusk."), std::string::npos);
  EXPECT_NE(m[1].content.find("Point in the story: Year 5"), std::string::npos);
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[2].content, "*Captain Mara looks up.* Who let you aboard, Ash?");
}

// Everything that varies per session lives after the first message, so every session of a
// character (same user name) shares the first message's KV in the prefix cache.
TEST(CharacterPromptTest, StaticPartIsTheSameForEverySession) {
  SessionSetup a = AshSetup(), b = AshSetup();
  b.user_persona = "a stowaway";
  b.scenario = "A storm at sea.";
  b.point_in_time = StoryTime{600, "Year 6"};
  b.greeting_index = 1;
  b.user_id = "other-user";
  const auto ma = BuildCharacterPreamble(Captain(), a, {});
  const auto mb = BuildCharacterPreamble(Captain(), b, {});
  EXPECT_EQ(ma[0].content, mb[0].content);
  EXPECT_NE(ma[1].content, mb[1].content);
  EXPECT_NE(mb[1].content.find("Scenario: A storm at sea."), std::string::npos);
  EXPECT_EQ(mb[2].content, "Another one for the crew, Ash?");
}

TEST(CharacterPromptTest, ConstantLoreAndExperiencesRespectStoryTime) {
  const std::string s = BuildCharacterPreamble(Captain(), AshSetup(), {})[0].content;
  const size_t before = s.find("Vell is a free port."), profile = s.find("Character: Captain Mara"),
               after = s.find("The Narrows are deadly.");
  ASSERT_NE(before, std::string::npos);
  ASSERT_NE(after, std::string::npos);
  EXPECT_LT(before, profile);
  EXPECT_GT(after, profile);
  EXPECT_EQ(s.find("The admiralty fell."), std::string::npos) << "visible only from 800";
  EXPECT_EQ(s.find("Krakens"), std::string::npos) << "keyed entries are per turn";
  EXPECT_NE(s.find("Lost her first ship"), std::string::npos);
  EXPECT_EQ(s.find("Becomes admiral"), std::string::npos) << "after the point in time";
  SessionSetup late = AshSetup();
  late.point_in_time = StoryTime{950, "Year 9"};
  const std::string l = BuildCharacterPreamble(Captain(), late, {})[0].content;
  EXPECT_NE(l.find("The admiralty fell."), std::string::npos);
  EXPECT_NE(l.find("Becomes admiral"), std::string::npos);
}

TEST(CharacterPromptTest, ExamplesCanBeDroppedAndGreetingsSkipped) {
  SessionSetup s = AshSetup();
  s.greeting_index = -1;
  const auto m = BuildCharacterPreamble(Captain(), s, NoExamples());
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].content.find("Where are we headed?"), std::string::npos);
  s.greeting_index = 7;  // out of range: no greeting either
  EXPECT_EQ(BuildCharacterPreamble(Captain(), s, {}).size(), 2u);
}

TEST(CharacterPromptTest, TurnContextListsMemoriesTriggeredLoreAndInstructions) {
  const CharacterProfile p = Captain();
  const std::vector<RecalledMemory> memories = {{"Ash: hi\nCaptain Mara: Off my deck, {{user}}.", "Year 4"},
                                                {"Ash paid for passage in silver.", ""}};
  const ActivatedLore kraken = Fired(3, LoreTrigger::kKey, "Krakens hunt at night.");
  const ActivatedLore constant = Fired(0, LoreTrigger::kConstant, "Vell is a free port.");
  const std::vector<ActivatedLore> lore = {constant, kraken};
  const std::string c = BuildTurnContext(p, AshSetup(), memories, lore, {});
  EXPECT_EQ(c,
            "Captain Mara remembers:\n"
            "- [Year 4] Ash: hi\nCaptain Mara: Off my deck, Ash.\n"
            "- Ash paid for passage in silver.\n"
            "\nWorld notes:\n"
            "Krakens hunt at night.\n"
            "\nAnswer as Captain Mara in two sentences.");
  CharacterProfile plain = p;
  plain.post_history_instructions.clear();
  EXPECT_EQ(BuildTurnContext(plain, AshSetup(), {}, {}, {}), "");
  EXPECT_EQ(BuildTurnContext(plain, AshSetup(), {}, {}, PostHistory("Be brief.")), "Be brief.");
}

// Rendering turn n + 1 starts with exactly the text turn n ran on plus its reply: append-only.
TEST(CharacterPromptTest, ConversationRenderIsAppendOnly) {
  const CharacterProfile p = Captain();
  std::vector<ChatMessage> messages = BuildCharacterPreamble(p, AshSetup(), {});
  messages.push_back({"user", "Can I join the crew?"});
  messages.push_back({"system", BuildTurnContext(p, AshSetup(), {}, {}, {})});
  const std::string turn1 = RenderChat(ChatFamily::kChatMl, messages, /*add_generation_prompt=*/true).Flat();
  messages.push_back({"assistant", "Only if you can haul a line."});
  messages.push_back({"user", "I can."});
  const std::vector<RecalledMemory> recalled = {{"Ash asked to join.", ""}};
  messages.push_back({"system", BuildTurnContext(p, AshSetup(), recalled, {}, {})});
  const std::string turn2 = RenderChat(ChatFamily::kChatMl, messages, true).Flat();
  ASSERT_EQ(turn2.rfind(turn1 + "Only if you can haul a line.", 0), 0u) << turn2;
}

TEST(CharacterPromptTest, CardsWrittenAsNamedDialogueGetTheCharactersNameAsReplyPrefix) {
  EXPECT_EQ(ReplyPrefixFor(Captain()), "Captain Mara:");  // example dialogue with speakers

  CharacterProfile plain;
  plain.name = "Mira";
  plain.description = "{{char}} is a bard. She sings for {{user}}.";
  EXPECT_EQ(ReplyPrefixFor(plain), "");

  CharacterProfile lore = plain;  // no examples, but lore written as dialogue
  Lorebook book;
  book.entries = {Lore("The storm night:\n{{USER}}: Is it safe?\n{{char}}: Never.", false, LorePosition::kBeforeChar)};
  lore.lorebook = book;
  EXPECT_EQ(ReplyPrefixFor(lore), "Mira:");

  CharacterProfile scenario = plain;
  scenario.scenario = "{{user}}: Hello?";
  EXPECT_EQ(ReplyPrefixFor(scenario), "Mira:");

  // Cards as users import them: examples and lore written as dialogue.
  for (const char* file : {"cards/v2_ferryman_dialogue_lore.json", "cards/v2_lighthouse_keeper.json"}) {
    const absl::StatusOr<CharacterProfile> card = ParseCharacterCard(testing::ReadTestData(file));
    ASSERT_TRUE(card.ok()) << file << ": " << card.status();
    EXPECT_EQ(ReplyPrefixFor(*card), MacroCharName(*card) + ":") << file;
    CharacterProfile lore_only = *card;
    lore_only.example_dialogues.clear();
    if (std::string(file).find("ferryman") != std::string::npos) {
      EXPECT_EQ(ReplyPrefixFor(lore_only), "Old Tam:") << "its lore alone is dialogue";
    }
  }
}

}  // namespace
}  // namespace troupe
