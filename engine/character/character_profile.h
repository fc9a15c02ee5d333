// The character model: everything a Character Card (V1/V2/V3) holds plus troupe's structured
// attributes. Plain C++ values; built by ParseCharacterCard, read by prompt building and the
// lorebook. The server mirrors this struct in its proto; the engine never sees the proto.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/memory/emotion.h"  // EmotionVector
#include "nlohmann/json.hpp"

namespace troupe {

// A point on a story's own clock (TimeChara). `ordinal` gives the total order, e.g.
// book * 1000 + chapter, or seconds in the story world; `label` is for people only.
struct StoryTime {
  int64_t ordinal = 0;
  std::string label;  // "Book 3, Chapter 12"; may be empty

  bool operator==(const StoryTime&) const = default;
};


// ---- example dialogues (mes_example) ----

struct DialogueTurn {
  std::string speaker;  // "{{user}}", "{{char}}", a name as written, or "" for narration
  std::string text;     // the turn without its "speaker:" prefix, trimmed

  bool operator==(const DialogueTurn&) const = default;
};

// One `<START>` block of mes_example.
struct ExampleDialogue {
  std::vector<DialogueTurn> turns;

  bool operator==(const ExampleDialogue&) const = default;
};

// ---- structured attributes (CharacterGLM taxonomy; all optional, empty = unset) ----

struct Identity {
  std::string gender;
  std::string age;  // free text: "34", "early twenties", "ageless"
  std::string species;
  std::string occupation;
  std::string appearance;
  std::string birthplace;
  std::string relationship_status;

  bool operator==(const Identity&) const = default;
};

struct Experience {
  std::string text;
  std::optional<StoryTime> when;         // nullopt = undated
  std::optional<EmotionVector> emotion;  // nullopt = not tagged

  bool operator==(const Experience&) const = default;
};

struct Relationship {
  std::string target;    // the other person's name
  std::string relation;  // "sister", "rival", "mentor"
  std::string description;

  bool operator==(const Relationship&) const = default;
};

// Style and tone (CharacterGLM behaviours; RoleLLM catchphrases).
struct Behaviour {
  std::string linguistic_features;  // tone, vocabulary, dialect, register
  std::string emotional_expressions;
  std::string interaction_patterns;
  std::vector<std::string> catchphrases;

  bool operator==(const Behaviour&) const = default;
};

struct Psychometrics {
  // Openness, conscientiousness, extraversion, agreeableness, neuroticism (BFI 1..5, not
  // enforced); nullopt = not labelled.
  std::optional<std::array<float, 5>> big_five;
  std::string mbti_type;  // "INTJ"; empty = not labelled

  bool operator==(const Psychometrics&) const = default;
};

// ---- lorebook (character_book) ----

enum class LorePosition { kBeforeChar, kAfterChar };

struct LoreEntry {
  std::vector<std::string> keys;            // any one matching activates the entry
  std::vector<std::string> secondary_keys;  // with `selective`, one of these must match too
  bool selective = false;
  std::string content;  // text inserted into the prompt
  bool enabled = true;
  int insertion_order = 0;  // lower = inserted earlier (higher up)
  bool case_sensitive = false;
  std::string name;
  int priority = 0;  // over budget, the lowest priority is dropped first
  // The card's id: a number (V2/V3) or a string (V3 allows both); at most one is set.
  std::optional<int64_t> id;
  std::optional<std::string> string_id;
  std::string comment;
  bool constant = false;  // always inserted (within budget), keys or not
  LorePosition position = LorePosition::kBeforeChar;
  bool use_regex = false;  // V3: keys are regular expressions
  // Hidden while the session's story time is before this; nullopt = always visible.
  // Stored in the entry's extensions as "troupe/visible_from".
  std::optional<StoryTime> visible_from;
  // The entry's extensions object verbatim, minus "troupe/visible_from".
  nlohmann::json extensions = nlohmann::json::object();
  // Index of this entry in the imported card's entries array, or -1 for an entry the card did
  // not have. Export starts from that raw entry, so keys this model does not know survive.
  int source_index = -1;

  bool operator==(const LoreEntry&) const = default;
};

struct Lorebook {
  std::string name;
  std::string description;
  std::optional<int> scan_depth;    // messages scanned for keys; nullopt = LoreOptions default
  std::optional<int> token_budget;  // tokens of lore per prompt; nullopt = LoreOptions default
  bool recursive_scanning = false;  // activated content can activate further entries
  std::vector<LoreEntry> entries;
  nlohmann::json extensions = nlohmann::json::object();  // verbatim

  bool operator==(const Lorebook&) const = default;
};

// ---- the profile ----

// A character. Copyable value type; not synchronized (callers share it read-only or copy it).
// Field comments say which card field each maps to; see docs/characters.md.
struct CharacterProfile {
  // Prompt text (every field here may reach the prompt).
  std::string name;      // data.name; never empty once imported
  std::string nickname;  // V3 data.nickname; when set, {{char}} becomes this instead of name
  std::string description;
  std::string personality;
  std::string scenario;
  std::string first_message;                      // data.first_mes
  std::vector<std::string> alternate_greetings;   // "swipes" of first_message
  std::vector<std::string> group_only_greetings;  // V3; used only in group chats
  std::string mes_example;  // raw text, `<START>` blocks; what export writes back
  std::vector<ExampleDialogue> example_dialogues;  // parsed from mes_example on import
  std::string system_prompt;                       // "" = the global one; may contain {{original}}
  std::string post_history_instructions;           // "" = the global one; may contain {{original}}

  // Provenance: never rendered into a prompt.
  std::string creator;
  std::string creator_notes;
  std::map<std::string, std::string> creator_notes_multilingual;  // V3; language code -> notes
  std::vector<std::string> tags;
  std::string character_version;
  std::vector<std::string> source;           // V3; URLs or ids the card came from
  std::optional<int64_t> creation_date;      // V3; Unix seconds; nullopt = unknown
  std::optional<int64_t> modification_date;  // V3; Unix seconds; nullopt = unknown

  // Structured attributes, stored in data.extensions["troupe/profile"].
  Identity identity;
  std::vector<std::string> interests;
  std::vector<std::string> viewpoints;
  std::vector<Experience> experiences;
  std::vector<std::string> achievements;
  std::vector<Relationship> relationships;
  Behaviour behaviour;
  Psychometrics psychometrics;

  std::optional<Lorebook> lorebook;  // data.character_book; nullopt = the card has none

  // data.extensions verbatim, minus "troupe/profile" (held by the structured fields above).
  nlohmann::json extensions = nlohmann::json::object();

  std::string import_format;  // "chara_card_v1", "chara_card_v2" or "chara_card_v3"
  std::string raw_card_json;  // the imported card; export patches it so unknown keys survive

  bool operator==(const CharacterProfile&) const = default;
};

}  // namespace troupe
