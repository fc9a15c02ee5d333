#include "engine/session/character_prompt.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/character/character_card.h"

namespace troupe {
namespace {

// "Label: value\n" when value is not empty.
void AddLine(std::string& out, absl::string_view label, absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return;
  absl::StrAppend(&out, label, ": ", value, "\n");
}

void AddList(std::string& out, absl::string_view label, const std::vector<std::string>& values) {
  std::vector<absl::string_view> kept;
  for (const std::string& v : values) {
    absl::string_view s = absl::StripAsciiWhitespace(v);
    if (!s.empty()) kept.push_back(s);
  }
  if (!kept.empty()) absl::StrAppend(&out, label, ": ", absl::StrJoin(kept, "; "), "\n");
}

std::string TrimEnd(const std::string& s) {
  const absl::string_view t = absl::StripTrailingAsciiWhitespace(s);
  return std::string(t.data(), t.size());
}

bool VisibleAt(const std::optional<StoryTime>& from, const std::optional<StoryTime>& now) {
  return !from.has_value() || !now.has_value() || from->ordinal <= now->ordinal;
}

// The profile's prompt text: everything but provenance, in a fixed order.
std::string RenderProfile(const CharacterProfile& p, const SessionSetup& setup) {
  std::string out;
  const std::string& name = MacroCharName(p);
  AddLine(out, "Character", name);
  AddLine(out, "Description", p.description);
  AddLine(out, "Personality", p.personality);
  const Identity& id = p.identity;
  AddLine(out, "Gender", id.gender);
  AddLine(out, "Age", id.age);
  AddLine(out, "Species", id.species);
  AddLine(out, "Occupation", id.occupation);
  AddLine(out, "Appearance", id.appearance);
  AddLine(out, "Birthplace", id.birthplace);
  AddLine(out, "Relationship status", id.relationship_status);
  AddList(out, "Interests", p.interests);
  AddList(out, "Viewpoints", p.viewpoints);
  AddList(out, "Achievements", p.achievements);
  std::vector<std::string> experiences;
  for (const Experience& e : p.experiences) {
    // Experiences after the session's point in time have not happened yet.
    if (VisibleAt(e.when, setup.point_in_time)) experiences.push_back(e.text);
  }
  AddList(out, "Experiences", experiences);
  std::vector<std::string> relationships;
  for (const Relationship& r : p.relationships) {
    std::string line = r.relation.empty() ? r.target : absl::StrCat(r.target, " (", r.relation, ")");
    if (!r.description.empty()) absl::StrAppend(&line, ": ", r.description);
    relationships.push_back(std::move(line));
  }
  AddList(out, "Relationships", relationships);
  AddLine(out, "Speaking style", p.behaviour.linguistic_features);
  AddLine(out, "Emotional expression", p.behaviour.emotional_expressions);
  AddLine(out, "Interaction patterns", p.behaviour.interaction_patterns);
  AddList(out, "Catchphrases", p.behaviour.catchphrases);
  if (!p.psychometrics.mbti_type.empty()) AddLine(out, "MBTI", p.psychometrics.mbti_type);
  return out;
}

std::string RenderExamples(const CharacterProfile& p, const std::string& char_name, const std::string& user_name) {
  std::string out;
  for (const ExampleDialogue& block : p.example_dialogues) {
    absl::StrAppend(&out, "<example>\n");
    for (const DialogueTurn& t : block.turns) {
      const std::string& speaker = t.speaker == "{{user}}"   ? user_name
                                   : t.speaker == "{{char}}" ? char_name
                                                             : t.speaker;
      if (speaker.empty()) {
        absl::StrAppend(&out, t.text, "\n");
      } else {
        absl::StrAppend(&out, speaker, ": ", t.text, "\n");
      }
    }
    absl::StrAppend(&out, "</example>\n");
  }
  return out;
}

}  // namespace

std::vector<const LoreEntry*> ConstantLore(const CharacterProfile& profile, const SessionSetup& setup) {
  std::vector<const LoreEntry*> out;
  if (!profile.lorebook) return out;
  for (const LoreEntry& e : profile.lorebook->entries) {
    if (e.enabled && e.constant && VisibleAt(e.visible_from, setup.point_in_time)) out.push_back(&e);
  }
  std::stable_sort(out.begin(), out.end(), [](const LoreEntry* a, const LoreEntry* b) {
    return a->insertion_order < b->insertion_order;
  });
  return out;
}

namespace {

bool HasUserLine(std::string_view text) {
  constexpr std::string_view kUserLine = "{{user}}:";
  if (text.size() < kUserLine.size()) return false;
  for (size_t i = 0; i + kUserLine.size() <= text.size(); ++i) {
    size_t j = 0;
    while (j < kUserLine.size() && absl::ascii_tolower(static_cast<unsigned char>(text[i + j])) == kUserLine[j]) ++j;
    if (j == kUserLine.size()) return true;
  }
  return false;
}

}  // namespace

std::string ReplyPrefixFor(const CharacterProfile& profile) {
  bool named = false;
  for (const ExampleDialogue& block : profile.example_dialogues) {
    for (const DialogueTurn& turn : block.turns) named = named || !turn.speaker.empty();
  }
  for (std::string_view text : {std::string_view(profile.description), std::string_view(profile.personality),
                                std::string_view(profile.scenario), std::string_view(profile.first_message)}) {
    named = named || HasUserLine(text);
  }
  if (profile.lorebook) {
    for (const LoreEntry& entry : profile.lorebook->entries) named = named || HasUserLine(entry.content);
  }
  return named ? MacroCharName(profile) + ":" : std::string();
}

std::string GreetingFor(const CharacterProfile& profile, const SessionSetup& setup) {
  const int i = setup.greeting_index;
  std::string_view text;
  if (i == 0) {
    text = profile.first_message;
  } else if (i > 0 && i <= static_cast<int>(profile.alternate_greetings.size())) {
    text = profile.alternate_greetings[i - 1];
  }
  return SubstituteMacros(text, MacroCharName(profile), setup.user_name);
}

std::vector<ChatMessage> BuildCharacterPreamble(const CharacterProfile& profile,
                                                const SessionSetup& setup,
                                                const CharacterPromptOptions& options) {
  const std::string& char_name = MacroCharName(profile);
  std::string stat = ResolvePromptOverride(profile.system_prompt, options.global_system_prompt);
  if (!stat.empty()) stat += "\n\n";
  const std::vector<const LoreEntry*> constant = ConstantLore(profile, setup);
  for (const LoreEntry* e : constant) {
    if (e->position == LorePosition::kBeforeChar) absl::StrAppend(&stat, e->content, "\n");
  }
  stat += RenderProfile(profile, setup);
  for (const LoreEntry* e : constant) {
    if (e->position == LorePosition::kAfterChar) absl::StrAppend(&stat, e->content, "\n");
  }
  if (options.include_examples && !profile.example_dialogues.empty()) {
    absl::StrAppend(&stat, "\nExample dialogues:\n", RenderExamples(profile, char_name, setup.user_name));
  }
  std::vector<ChatMessage> messages;
  messages.push_back({"system", SubstituteMacros(TrimEnd(stat), char_name,
                                                  setup.user_name)});

  std::string session;
  AddLine(session, "The user", setup.user_name);
  AddLine(session, "User persona", setup.user_persona);
  AddLine(session, "Scenario", setup.scenario.empty() ? profile.scenario : setup.scenario);
  if (setup.point_in_time && !setup.point_in_time->label.empty()) {
    AddLine(session, "Point in the story", setup.point_in_time->label);
  }
  if (!session.empty()) {
    messages.push_back({"system", SubstituteMacros(TrimEnd(session),
                                                    char_name, setup.user_name)});
  }
  std::string greeting = GreetingFor(profile, setup);
  if (!greeting.empty()) messages.push_back({"assistant", std::move(greeting)});
  return messages;
}

std::string BuildTurnContext(const CharacterProfile& profile, const SessionSetup& setup,
                             std::span<const RecalledMemory> memories,
                             std::span<const ActivatedLore> lore,
                             const CharacterPromptOptions& options) {
  const std::string& char_name = MacroCharName(profile);
  std::string out;
  if (!memories.empty()) {
    absl::StrAppend(&out, char_name, " remembers:\n");
    for (const RecalledMemory& m : memories) {
      if (m.when.empty()) {
        absl::StrAppend(&out, "- ", m.text, "\n");
      } else {
        absl::StrAppend(&out, "- [", m.when, "] ", m.text, "\n");
      }
    }
  }
  bool lore_header = false;
  for (const ActivatedLore& l : lore) {
    if (l.trigger == LoreTrigger::kConstant) continue;  // in the preamble
    if (!lore_header) {
      absl::StrAppend(&out, out.empty() ? "" : "\n", "World notes:\n");
      lore_header = true;
    }
    absl::StrAppend(&out, l.content, "\n");
  }
  const std::string post = ResolvePromptOverride(profile.post_history_instructions, options.global_post_history);
  if (!absl::StripAsciiWhitespace(post).empty()) absl::StrAppend(&out, out.empty() ? "" : "\n", post);
  return SubstituteMacros(TrimEnd(out), char_name, setup.user_name);
}

}  // namespace troupe
