#include "engine/character/character_card.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/testdata.h"

namespace troupe {
namespace {

using json = nlohmann::json;

std::string ReadCard(const std::string& name) { return testing::ReadTestData("cards/" + name); }

CharacterProfile MustParse(std::string_view text) {
  absl::StatusOr<CharacterProfile> profile = ParseCharacterCard(text);
  EXPECT_TRUE(profile.ok()) << profile.status();
  return profile.ok() ? *std::move(profile) : CharacterProfile{};
}

// The card with `patch` merged in (RFC 7386: null deletes), as text.
std::string Patched(const std::string& card_file, const json& patch) {
  json card = json::parse(ReadCard(card_file));
  card.merge_patch(patch);
  return card.dump();
}

// Expects `text` to be refused with kInvalidArgument and exactly `message`.
void ExpectRefused(std::string_view text, std::string_view message) {
  absl::StatusOr<CharacterProfile> profile = ParseCharacterCard(text);
  ASSERT_FALSE(profile.ok()) << "accepted; wanted: " << message;
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(profile.status().message()), std::string(message));
}

// Everything but the record of where each profile came from.
void ExpectSameCharacter(CharacterProfile a, CharacterProfile b) {
  a.raw_card_json.clear();
  b.raw_card_json.clear();
  a.import_format.clear();
  b.import_format.clear();
  for (CharacterProfile* p : {&a, &b}) {
    if (!p->lorebook) continue;
    for (LoreEntry& e : p->lorebook->entries) e.source_index = -1;
  }
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.example_dialogues, b.example_dialogues);
  EXPECT_EQ(a.lorebook, b.lorebook);
  EXPECT_EQ(a.extensions, b.extensions);
  EXPECT_TRUE(a == b);
}

const char* const kCards[] = {"v1_tavern_cat.json", "v2_lighthouse_keeper.json",
                              "v3_clockwork_archivist.json"};

// ---- import ----

TEST(CharacterCardTest, ReadsV2FieldsFromDataNotTopLevel) {
  const CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  EXPECT_EQ(p.import_format, "chara_card_v2");
  EXPECT_EQ(p.name, "Maren Holt");
  // The top-level V1 copy is shorter; data.description wins.
  EXPECT_NE(p.description.find("limp from an old fall"), std::string::npos);
  EXPECT_EQ(p.tags, (std::vector<std::string>{"fantasy", "slow burn", "lighthouse"}));
  EXPECT_EQ(p.alternate_greetings.size(), 2u);
  EXPECT_EQ(p.creator, "tidewriter");
  EXPECT_EQ(p.character_version, "1.3");
  EXPECT_EQ(p.creator_notes, "Works best with a slow pace. Try asking about the lens.");
  EXPECT_EQ(p.system_prompt, "{{original}}\nWrite {{char}}'s replies in third person, past tense.");
  EXPECT_EQ(p.post_history_instructions, "");
  EXPECT_TRUE(p.nickname.empty());
  EXPECT_FALSE(p.creation_date.has_value());
}

TEST(CharacterCardTest, SplitsMesExampleIntoStartBlocks) {
  const CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  ASSERT_EQ(p.example_dialogues.size(), 3u);
  EXPECT_EQ(p.example_dialogues[0].turns,
            (std::vector<DialogueTurn>{
                {"{{user}}", "Where am I?"},
                {"{{char}}", "Greyhaven. Nearest village is a day's walk, if the bridge holds."}}));
  // A line without a speaker continues the turn above it.
  EXPECT_EQ(p.example_dialogues[1].turns[1].text,
            "*She snorts.* The gulls talk plenty.\nAnd the sea never shuts up.");
  // Narration first, then the card's own name, <USER> and <BOT>.
  EXPECT_EQ(p.example_dialogues[2].turns,
            (std::vector<DialogueTurn>{{"", "*Rain hammers the lantern room.*"},
                                       {"Maren Holt", "Hand me that wick trimmer."},
                                       {"{{user}}", "This one?"},
                                       {"{{char}}", "That's a spoon. The other one."}}));
  EXPECT_NE(p.mes_example.find("<START>"), std::string::npos);  // raw text kept
}

TEST(CharacterCardTest, ReadsLorebookEntries) {
  const CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  ASSERT_TRUE(p.lorebook.has_value());
  const Lorebook& book = *p.lorebook;
  EXPECT_EQ(book.name, "Greyhaven");
  EXPECT_EQ(book.scan_depth, 3);
  EXPECT_EQ(book.token_budget, 400);
  EXPECT_TRUE(book.recursive_scanning);
  EXPECT_EQ(book.extensions, json({{"agnai/book_mode", "standard"}}));
  ASSERT_EQ(book.entries.size(), 5u);
  const LoreEntry& lens = book.entries[0];
  EXPECT_EQ(lens.keys, (std::vector<std::string>{"lens", "Fresnel"}));
  EXPECT_EQ(lens.id, 0);
  EXPECT_EQ(lens.priority, 10);
  EXPECT_EQ(lens.insertion_order, 100);
  EXPECT_EQ(lens.position, LorePosition::kBeforeChar);
  EXPECT_EQ(lens.extensions.at("probability"), 100);
  EXPECT_EQ(lens.source_index, 0);
  const LoreEntry& bridge = book.entries[1];
  EXPECT_TRUE(bridge.selective);
  EXPECT_EQ(bridge.secondary_keys, (std::vector<std::string>{"bridge", "road"}));
  EXPECT_EQ(bridge.position, LorePosition::kAfterChar);
  EXPECT_EQ(bridge.comment, "Bridge to the village");
  EXPECT_TRUE(book.entries[2].constant);
  EXPECT_TRUE(book.entries[3].case_sensitive);
  EXPECT_FALSE(book.entries[3].selective);
  EXPECT_FALSE(book.entries[4].enabled);
}

TEST(CharacterCardTest, ReadsTroupeProfileFromExtensions) {
  const CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  EXPECT_EQ(p.identity.gender, "female");
  EXPECT_EQ(p.identity.age, "54");
  EXPECT_EQ(p.identity.occupation, "lighthouse keeper");
  EXPECT_EQ(p.identity.birthplace, "Saltmere");
  EXPECT_EQ(p.interests, (std::vector<std::string>{"tide tables", "knot tying"}));
  ASSERT_EQ(p.experiences.size(), 2u);
  ASSERT_TRUE(p.experiences[0].when.has_value());
  EXPECT_EQ(*p.experiences[0].when, (StoryTime{1204, "Winter of the Marigold"}));
  ASSERT_TRUE(p.experiences[0].emotion.has_value());
  EXPECT_EQ((*p.experiences[0].emotion)[2], 7.0f);  // fear
  EXPECT_FALSE(p.experiences[1].when.has_value());
  EXPECT_FALSE(p.experiences[1].emotion.has_value());
  ASSERT_EQ(p.relationships.size(), 1u);
  EXPECT_EQ(p.relationships[0].relation, "brother");
  EXPECT_EQ(p.behaviour.catchphrases, std::vector<std::string>{"Tide waits for no one."});
  ASSERT_TRUE(p.psychometrics.big_five.has_value());
  EXPECT_FLOAT_EQ((*p.psychometrics.big_five)[1], 4.5f);
  EXPECT_EQ(p.psychometrics.mbti_type, "ISTJ");
  // The structured fields own troupe/profile; other extensions stay verbatim.
  EXPECT_FALSE(p.extensions.contains("troupe/profile"));
  EXPECT_EQ(p.extensions.at("depth_prompt").at("depth"), 4);
  EXPECT_EQ(p.extensions.at("talkativeness"), "0.5");
}

TEST(CharacterCardTest, ReadsV3Fields) {
  const CharacterProfile p = MustParse(ReadCard("v3_clockwork_archivist.json"));
  EXPECT_EQ(p.import_format, "chara_card_v3");
  EXPECT_EQ(p.nickname, "Quill");
  EXPECT_EQ(MacroCharName(p), "Quill");
  EXPECT_EQ(p.group_only_greetings.size(), 1u);
  EXPECT_EQ(p.creator_notes_multilingual.at("ja"), "クイルは目録について嘘をつかない。");
  EXPECT_EQ(p.source.size(), 2u);
  EXPECT_EQ(p.creation_date, 1700000000);
  EXPECT_EQ(p.modification_date, 1717171717);
  ASSERT_TRUE(p.lorebook.has_value());
  const std::vector<LoreEntry>& entries = p.lorebook->entries;
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_TRUE(entries[0].use_regex);
  EXPECT_EQ(entries[0].string_id, "gears");
  EXPECT_FALSE(entries[0].id.has_value());
  EXPECT_EQ(entries[3].id, 9);
  EXPECT_FALSE(entries[4].id.has_value() || entries[4].string_id.has_value());
  ASSERT_TRUE(entries[3].visible_from.has_value());
  EXPECT_EQ(*entries[3].visible_from, (StoryTime{300, "Act III"}));
  EXPECT_EQ(entries[3].extensions, json({{"risu/note", "spoiler"}}));
  EXPECT_FALSE(p.lorebook->token_budget.has_value());
}

TEST(CharacterCardTest, ReadsV1CardFromTopLevel) {
  const CharacterProfile p = MustParse(ReadCard("v1_tavern_cat.json"));
  EXPECT_EQ(p.import_format, "chara_card_v1");
  EXPECT_EQ(p.name, "Pip");
  EXPECT_EQ(MacroCharName(p), "Pip");
  EXPECT_EQ(p.first_message, "*Pip lands on the bar with a thump and stares at your plate.*");
  EXPECT_FALSE(p.lorebook.has_value());
  EXPECT_TRUE(p.tags.empty());
  ASSERT_EQ(p.example_dialogues.size(), 1u);
  EXPECT_EQ(
      p.example_dialogues[0].turns,
      (std::vector<DialogueTurn>{{"{{user}}", "Shoo."}, {"{{char}}", "*Pip does not shoo.*"}}));
}

TEST(CharacterCardTest, FallsBackToTopLevelForV1FieldsMissingFromData) {
  const CharacterProfile p = MustParse(
      R"({"spec":"chara_card_v2","name":"Top","scenario":"top scenario",
          "data":{"name":"Inner","scenario":null,"first_mes":"hi"}})");
  EXPECT_EQ(p.name, "Inner");
  EXPECT_EQ(p.scenario, "top scenario");
  EXPECT_EQ(p.first_message, "hi");
}

TEST(CharacterCardTest, NullMeansAbsent) {
  const CharacterProfile p = MustParse(
      R"({"spec":"chara_card_v2","data":{"name":"N","system_prompt":null,"tags":null,
          "character_book":null,"extensions":null}})");
  EXPECT_EQ(p.system_prompt, "");
  EXPECT_TRUE(p.tags.empty());
  EXPECT_FALSE(p.lorebook.has_value());
  EXPECT_EQ(p.extensions, json::object());
}

// ---- export and round trips ----

TEST(CharacterCardTest, RoundTripsEveryCardThroughV2AndV3) {
  for (const char* file : kCards) {
    for (CardSpec spec : {CardSpec::kV2, CardSpec::kV3}) {
      SCOPED_TRACE(std::string(file) + (spec == CardSpec::kV2 ? " as V2" : " as V3"));
      const CharacterProfile first = MustParse(ReadCard(file));
      const std::string exported = ToCharacterCardJson(first, spec);
      const CharacterProfile second = MustParse(exported);
      EXPECT_EQ(second.import_format, spec == CardSpec::kV2 ? "chara_card_v2" : "chara_card_v3");
      ExpectSameCharacter(first, second);
      // Exporting the re-imported card again changes nothing.
      EXPECT_EQ(json::parse(ToCharacterCardJson(second, spec)), json::parse(exported));
    }
  }
}

TEST(CharacterCardTest, UnmodifiedV3CardExportsToTheSameJson) {
  const std::string original = ReadCard("v3_clockwork_archivist.json");
  EXPECT_EQ(json::parse(ToCharacterCardJson(MustParse(original), CardSpec::kV3)),
            json::parse(original));
}

TEST(CharacterCardTest, UnmodifiedV2CardExportsToTheSameJsonWithMirrorsSynced) {
  json expected = json::parse(ReadCard("v2_lighthouse_keeper.json"));
  // The stale top-level V1 copies are brought in line with data.
  expected["description"] = expected["data"]["description"];
  expected["mes_example"] = expected["data"]["mes_example"];
  const std::string exported =
      ToCharacterCardJson(MustParse(ReadCard("v2_lighthouse_keeper.json")), CardSpec::kV2);
  EXPECT_EQ(json::parse(exported), expected);
}

TEST(CharacterCardTest, UnknownKeysSurviveExportAtEveryLevel) {
  json original = json::parse(ReadCard("v2_lighthouse_keeper.json"));
  json out = json::parse(ToCharacterCardJson(MustParse(original.dump()), CardSpec::kV3));
  EXPECT_EQ(out["spec"], "chara_card_v3");
  EXPECT_EQ(out["spec_version"], "3.0");
  for (const char* key : {"creatorcomment", "avatar", "talkativeness", "fav", "create_date"}) {
    EXPECT_EQ(out[key], original[key]) << key;
  }
  json& data = out["data"];
  EXPECT_EQ(data["x_tool_note"], original["data"]["x_tool_note"]);
  for (const char* key : {"talkativeness", "fav", "world", "depth_prompt", "chub"}) {
    EXPECT_EQ(data["extensions"][key], original["data"]["extensions"][key]) << key;
  }
  json& tp = data["extensions"]["troupe/profile"];
  EXPECT_EQ(tp["future_field"], json({{"kept", true}}));
  EXPECT_EQ(tp["identity"]["zodiac"], "not a troupe field");
  EXPECT_EQ(tp["psychometrics"]["mbti_type"], "ISTJ");
  json& book = data["character_book"];
  EXPECT_EQ(book["x_book_flag"], "kept");
  EXPECT_EQ(book["extensions"], original["data"]["character_book"]["extensions"]);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(book["entries"][i]["extensions"],
              original["data"]["character_book"]["entries"][i]["extensions"])
        << i;
  }
  EXPECT_EQ(book["entries"][1]["x_entry_note"], "unknown entry key");
  // V3 requires these on every entry and group_only_greetings on the card.
  EXPECT_EQ(book["entries"][3]["use_regex"], false);
  EXPECT_EQ(book["entries"][3]["constant"], false);
  EXPECT_EQ(data["group_only_greetings"], json::array());
}

TEST(CharacterCardTest, V3OnlyKeysSurviveAV2Export) {
  json original = json::parse(ReadCard("v3_clockwork_archivist.json"));
  json out = json::parse(ToCharacterCardJson(MustParse(original.dump()), CardSpec::kV2));
  EXPECT_EQ(out["spec"], "chara_card_v2");
  EXPECT_EQ(out["spec_version"], "2.0");
  EXPECT_EQ(out["x_card_host"], original["x_card_host"]);
  EXPECT_EQ(out["data"]["assets"], original["data"]["assets"]);
  EXPECT_EQ(out["data"]["nickname"], "Quill");
  EXPECT_EQ(out["data"]["extensions"]["risuai"], original["data"]["extensions"]["risuai"]);
  json& entry = out["data"]["character_book"]["entries"][3];
  EXPECT_EQ(entry["extensions"]["troupe/visible_from"],
            json({{"ordinal", 300}, {"label", "Act III"}}));
  EXPECT_EQ(entry["extensions"]["risu/note"], "spoiler");
}

TEST(CharacterCardTest, V1CardExportsAsCompleteV2Card) {
  json original = json::parse(ReadCard("v1_tavern_cat.json"));
  CharacterProfile p = MustParse(original.dump());
  p.name = "Pip the Magnificent";
  json out = json::parse(ToCharacterCardJson(p, CardSpec::kV2));
  EXPECT_EQ(out["spec"], "chara_card_v2");
  for (const char* key :
       {"name", "description", "personality", "scenario", "first_mes", "mes_example",
        "creator_notes", "system_prompt", "post_history_instructions", "alternate_greetings",
        "tags", "creator", "character_version", "extensions"}) {
    EXPECT_TRUE(out["data"].contains(key)) << key;
  }
  EXPECT_FALSE(out["data"].contains("character_book"));
  EXPECT_FALSE(out["data"].contains("nickname"));
  EXPECT_EQ(out["data"]["name"], "Pip the Magnificent");
  EXPECT_EQ(out["name"], "Pip the Magnificent");  // the V1 copy follows the edit
  EXPECT_EQ(out["chat"], original["chat"]);
  EXPECT_EQ(out["metadata"], original["metadata"]);
}

TEST(CharacterCardTest, EditedLorebookKeepsEachEntrysUnknownKeys) {
  CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  Lorebook& book = *p.lorebook;
  book.entries.erase(book.entries.begin());  // the old entries[1] is now first
  LoreEntry added;
  added.keys = {"lantern"};
  added.content = "The lantern burns whale oil.";
  added.visible_from = StoryTime{42, ""};
  book.entries.push_back(added);
  json out = json::parse(ToCharacterCardJson(p, CardSpec::kV2));
  json& entries = out["data"]["character_book"]["entries"];
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0]["x_entry_note"], "unknown entry key");
  EXPECT_EQ(entries[0]["extensions"], json({{"position", 1}, {"exclude_recursion", true}}));
  EXPECT_EQ(entries[4], json({{"keys", {"lantern"}},
                              {"content", "The lantern burns whale oil."},
                              {"extensions", {{"troupe/visible_from", {{"ordinal", 42}}}}},
                              {"enabled", true},
                              {"insertion_order", 0}}));
  const CharacterProfile again = MustParse(out.dump());
  EXPECT_EQ(again.lorebook->entries[4].visible_from, (StoryTime{42, ""}));
}

TEST(CharacterCardTest, ExportsAProfileBuiltInCode) {
  CharacterProfile p;
  p.name = "Vell";
  p.identity.species = "river spirit";
  p.psychometrics.big_five = std::array<float, 5>{1, 2, 3, 4, 5};
  p.lorebook.emplace();
  p.lorebook->entries.push_back(LoreEntry{});
  json out = json::parse(ToCharacterCardJson(p, CardSpec::kV3));
  EXPECT_EQ(out["spec_version"], "3.0");
  EXPECT_EQ(out["data"]["extensions"],
            json({{"troupe/profile",
                   {{"identity", {{"species", "river spirit"}}},
                    {"psychometrics", {{"big_five", {1.0, 2.0, 3.0, 4.0, 5.0}}}}}}}));
  EXPECT_EQ(out["data"]["character_book"]["entries"][0]["use_regex"], false);
  EXPECT_EQ(out["data"]["character_book"]["extensions"], json::object());
  ExpectSameCharacter(p, MustParse(out.dump()));
}

TEST(CharacterCardTest, ClearedStructuredFieldsLeaveNoEmptyObjects) {
  CharacterProfile p = MustParse(ReadCard("v2_lighthouse_keeper.json"));
  p.identity = {};
  p.behaviour = {};
  p.psychometrics = {};
  json tp =
      json::parse(ToCharacterCardJson(p, CardSpec::kV2))["data"]["extensions"]["troupe/profile"];
  EXPECT_EQ(tp["identity"], json({{"zodiac", "not a troupe field"}}));  // unknown key kept
  EXPECT_FALSE(tp.contains("behaviour"));
  EXPECT_FALSE(tp.contains("psychometrics"));
}

// ---- errors ----

TEST(CharacterCardTest, RefusesMalformedDocuments) {
  absl::StatusOr<CharacterProfile> bad = ParseCharacterCard("{\"name\": ");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("card: invalid JSON"), std::string::npos);
  ExpectRefused("[1, 2]", "card: expected a JSON object");
  ExpectRefused(R"({"spec":"chara_card_v2","name":"x"})", "data: expected an object");
  ExpectRefused(R"({"spec":"chara_card_v2","data":[]})", "data: expected an object");
  ExpectRefused(R"({"description":"no name"})", "name: missing or empty; a card needs a name");
  ExpectRefused(R"({"spec":"chara_card_v3","data":{"name":"  "}})",
                "data.name: missing or empty; a card needs a name");
}

TEST(CharacterCardTest, UnknownSpecListsTheAcceptedOnes) {
  const std::string accepted =
      "; accepted: \"chara_card_v2\", \"chara_card_v3\", or no spec for a V1 card";
  ExpectRefused(R"({"spec":"chara_card_v4","data":{"name":"x"}})",
                "spec: unsupported \"chara_card_v4\"" + accepted);
  ExpectRefused(R"({"spec":2,"name":"x"})", "spec: unsupported 2" + accepted);
}

TEST(CharacterCardTest, WrongTypesNameTheFieldPath) {
  const std::string card = "v2_lighthouse_keeper.json";
  const std::string book = "data.character_book";
  auto entry = [](int i, json fields) {
    json entries = json::array();
    for (int k = 0; k < i; ++k) entries.push_back({{"keys", {"k"}}, {"content", "c"}});
    entries.push_back(std::move(fields));
    return json({{"data", {{"character_book", {{"entries", entries}}}}}});
  };
  struct Case {
    json patch;
    std::string message;
  };
  const std::vector<Case> cases = {
      {entry(3, {{"keys", "sword"}}), book + ".entries[3].keys: expected an array of strings"},
      {entry(0, {{"keys", {"a", 1}}}), book + ".entries[0].keys: expected an array of strings"},
      {entry(1, {{"enabled", "yes"}}), book + ".entries[1].enabled: expected a boolean"},
      {entry(0, {{"insertion_order", 1.5}}),
       book + ".entries[0].insertion_order: expected an integer"},
      {entry(0, {{"priority", 1e12}}), book + ".entries[0].priority: expected an integer"},
      {entry(0, {{"id", 2.5}}), book + ".entries[0].id: expected an integer"},
      {entry(0, {{"id", true}}), book + ".entries[0].id: expected an integer or a string"},
      {entry(0, {{"position", "middle"}}),
       book + ".entries[0].position: expected \"before_char\" or \"after_char\""},
      {entry(0, {{"extensions", {{"troupe/visible_from", {{"label", "x"}}}}}}),
       book + ".entries[0].extensions[\"troupe/visible_from\"].ordinal: expected an integer"},
      {entry(2, json::array()), book + ".entries[2]: expected an object"},
      {{{"data", {{"character_book", {{"entries", json::object()}}}}}},
       book + ".entries: expected an array of entries"},
      {{{"data", {{"character_book", {{"scan_depth", -1}}}}}},
       book + ".scan_depth: expected a non-negative integer"},
      {{{"data", {{"character_book", "none"}}}}, book + ": expected an object"},
      {{{"data", {{"description", 7}}}}, "data.description: expected a string"},
      {{{"data", {{"tags", "a,b"}}}}, "data.tags: expected an array of strings"},
      {{{"data", {{"extensions", json::array()}}}}, "data.extensions: expected an object"},
      {{{"data", {{"creation_date", "yesterday"}}}}, "data.creation_date: expected an integer"},
      {{{"data", {{"creator_notes_multilingual", {{"en", 3}}}}}},
       "data.creator_notes_multilingual.en: expected a string"},
      {{{"data",
         {{"extensions", {{"troupe/profile", {{"psychometrics", {{"big_five", {1, 2}}}}}}}}}}},
       "data.extensions[\"troupe/profile\"].psychometrics.big_five: expected an array of 5 "
       "numbers within float's range"},
      // Found by fuzz_card_json (fuzz/corpus/card_json/regression-float-overflow): 4.4e87 became
      // infinity, which the export wrote as null and no import read back.
      {{{"data",
         {{"extensions",
           {{"troupe/profile", {{"psychometrics", {{"big_five", {3.1, 4.4e87, 2.0, 3.4, 2.2}}}}}}}}}}},
       "data.extensions[\"troupe/profile\"].psychometrics.big_five: expected an array of 5 "
       "numbers within float's range"},
      {{{"data", {{"extensions", {{"troupe/profile", {{"experiences", {{{"text", 5}}}}}}}}}}},
       "data.extensions[\"troupe/profile\"].experiences[0].text: expected a string"},
      {{{"data", {{"extensions", {{"troupe/profile", {{"identity", "tall"}}}}}}}},
       "data.extensions[\"troupe/profile\"].identity: expected an object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.patch.dump());
    ExpectRefused(Patched(card, c.patch), c.message);
  }
}

TEST(CharacterCardTest, EnforcesSizeLimits) {
  const std::string big_text(kMaxCardTextBytes + 1, 'x');
  ExpectRefused(Patched("v2_lighthouse_keeper.json", {{"data", {{"description", big_text}}}}),
                "data.description: 262145 bytes exceeds the limit of 262144");
  // Exactly at the limit is fine.
  EXPECT_TRUE(ParseCharacterCard(Patched("v2_lighthouse_keeper.json",
                                         {{"data", {{"description", big_text.substr(1)}}}}))
                  .ok());
  ExpectRefused(Patched("v2_lighthouse_keeper.json",
                        {{"data", {{"character_book", {{"entries", {{{"keys", {big_text}}}}}}}}}}),
                "data.character_book.entries[0].keys[0]: 262145 bytes exceeds the limit of 262144");

  ExpectRefused(Patched("v2_lighthouse_keeper.json",
                        {{"data", {{"alternate_greetings", std::vector<std::string>(65, "hi")}}}}),
                "data.alternate_greetings: 65 items exceeds the limit of 64");
  ExpectRefused(Patched("v3_clockwork_archivist.json",
                        {{"data", {{"group_only_greetings", std::vector<std::string>(65, "hi")}}}}),
                "data.group_only_greetings: 65 items exceeds the limit of 64");
  json entries = json::array();
  for (int i = 0; i < 1001; ++i) entries.push_back({{"keys", {"k"}}, {"content", "c"}});
  ExpectRefused(Patched("v2_lighthouse_keeper.json",
                        {{"data", {{"character_book", {{"entries", entries}}}}}}),
                "data.character_book.entries: 1001 entries exceeds the limit of 1000");

  std::string huge = R"({"name":"x","description":")" + std::string(kMaxCardBytes, 'y') + "\"}";
  ExpectRefused(huge,
                "card: " + std::to_string(huge.size()) + " bytes exceeds the limit of 2097152");
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  ExpectRefused(R"({"name":"x","data":)" + deep + "}", "card: JSON nested deeper than 64 levels");
}

TEST(CharacterCardTest, NestingInsideStringsDoesNotCountAsDepth) {
  const std::string brackets(200, '[');
  const CharacterProfile p = MustParse(R"({"name":"x","description":")" + brackets + "\"}");
  EXPECT_EQ(p.description, brackets);
}

// ---- mes_example, macros, {{original}} ----

TEST(CharacterCardTest, ExampleDialogueParsingEdgeCases) {
  const std::vector<std::string> names = {"Maren"};
  // Text before the first marker is a block; markers are case-insensitive and may share a
  // line with the first turn; CRLF line ends; empty blocks vanish.
  const std::vector<ExampleDialogue> blocks = ParseExampleDialogues(
      "Intro line\r\n<start>{{USER}}: hi\r\nMaren: hello\r\n<START>\n\n<START>\n"
      "  <bot>:   spaced  \nNote: not a speaker",
      names);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].turns, (std::vector<DialogueTurn>{{"", "Intro line"}}));
  EXPECT_EQ(blocks[1].turns, (std::vector<DialogueTurn>{{"{{user}}", "hi"}, {"Maren", "hello"}}));
  EXPECT_EQ(blocks[2].turns,
            (std::vector<DialogueTurn>{{"{{char}}", "spaced  \nNote: not a speaker"}}));
  EXPECT_TRUE(ParseExampleDialogues("", names).empty());
  EXPECT_TRUE(ParseExampleDialogues("<START>\n  \n<START>", names).empty());
}

TEST(CharacterCardTest, SubstitutesMacrosCaseInsensitively) {
  EXPECT_EQ(SubstituteMacros("{{char}} greets {{USER}}; <bot> nods at <User>.", "Maren", "Ash"),
            "Maren greets Ash; Maren nods at Ash.");
  // One pass: a user called "{{char}}" stays literal.
  EXPECT_EQ(SubstituteMacros("Hi {{user}}", "Maren", "{{char}}"), "Hi {{char}}");
  EXPECT_EQ(SubstituteMacros("{{chars}} {{use}} <BOT", "M", "A"), "{{chars}} {{use}} <BOT");
  const CharacterProfile quill = MustParse(ReadCard("v3_clockwork_archivist.json"));
  EXPECT_EQ(SubstituteMacros(quill.first_message, MacroCharName(quill), "Ash"),
            "*Gears whir.* Good evening, Ash. Shall we begin with the index cards?");
  EXPECT_EQ(SubstituteMacros(quill.description, MacroCharName(quill), "Ash").substr(0, 7),
            "Quill i");
}

TEST(CharacterCardTest, ResolvesOriginalAgainstTheGlobalPrompt) {
  const std::string global = "You are a helpful narrator.";
  EXPECT_EQ(ResolvePromptOverride("", global), global);
  EXPECT_EQ(ResolvePromptOverride(" \n\t", global), global);
  EXPECT_EQ(ResolvePromptOverride("Speak like a pirate.", global), "Speak like a pirate.");
  EXPECT_EQ(ResolvePromptOverride("{{original}}\nStay in character.", global),
            global + "\nStay in character.");
  EXPECT_EQ(ResolvePromptOverride("{{ORIGINAL}} / {{original}}", "G"), "G / G");
  EXPECT_EQ(ResolvePromptOverride("{{original}}", ""), "");
  const CharacterProfile quill = MustParse(ReadCard("v3_clockwork_archivist.json"));
  EXPECT_EQ(ResolvePromptOverride(quill.system_prompt, global), global);
  EXPECT_EQ(ResolvePromptOverride(quill.post_history_instructions, "Be brief."),
            "Be brief. Keep {{char}}'s answers under 120 words.");
}

}  // namespace
}  // namespace troupe
