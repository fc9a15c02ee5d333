#include "engine/character/character_card.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/character/card_json.h"

namespace troupe {
namespace {

using json = nlohmann::json;
using card_json::Expected;
using card_json::Find;
using card_json::FindObject;
using card_json::IndexPath;
using card_json::JoinPath;
using card_json::OverLimit;
using card_json::ReadBool;
using card_json::ReadInt;
using card_json::ReadInteger;
using card_json::ReadString;
using card_json::ReadStrings;
using card_json::ToFloats;
using card_json::ToInteger;
using card_json::ToString;
using card_json::WithinDepth;

constexpr char kSpecV2[] = "chara_card_v2";
constexpr char kSpecV3[] = "chara_card_v3";
constexpr char kTroupeProfileKey[] = "troupe/profile";
constexpr char kVisibleFromKey[] = "troupe/visible_from";
constexpr const char* kV1Fields[] = {"name",     "description", "personality",
                                     "scenario", "first_mes",   "mes_example"};

// ---- ASCII text helpers (Debian's Abseil takes absl::string_view, not std::string_view) ----

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(text[i]) != Lower(prefix[i])) return false;
  }
  return true;
}

std::string_view StripLeading(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view Strip(std::string_view s) {
  s = StripLeading(s);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// ---- import: troupe's structured fields ----

absl::Status ReadStoryTime(const json& value, absl::string_view path, StoryTime* out) {
  if (!value.is_object()) return Expected(path, "an object {ordinal, label}");
  const json* ordinal = Find(value, "ordinal");
  if (!ordinal) return Expected(JoinPath(path, "ordinal"), "an integer");
  TROUPE_RETURN_IF_ERROR(ToInteger(*ordinal, JoinPath(path, "ordinal"),
                                   std::numeric_limits<int64_t>::min(),
                                   std::numeric_limits<int64_t>::max(), &out->ordinal));
  return ReadString(value, "label", path, &out->label);
}

absl::Status ReadExperiences(const json& value, absl::string_view path,
                             std::vector<Experience>* out) {
  if (!value.is_array()) return Expected(path, "an array of objects");
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item = IndexPath(path, i);
    if (!value[i].is_object()) return Expected(item, "an object");
    Experience experience;
    TROUPE_RETURN_IF_ERROR(ReadString(value[i], "text", item, &experience.text));
    if (const json* when = Find(value[i], "when")) {
      experience.when.emplace();
      TROUPE_RETURN_IF_ERROR(ReadStoryTime(*when, JoinPath(item, "when"), &*experience.when));
    }
    if (const json* emotion = Find(value[i], "emotion")) {
      experience.emotion.emplace();
      TROUPE_RETURN_IF_ERROR(
          ToFloats(*emotion, JoinPath(item, "emotion"), 8, experience.emotion->data()));
    }
    out->push_back(std::move(experience));
  }
  return absl::OkStatus();
}

absl::Status ReadRelationships(const json& value, absl::string_view path,
                               std::vector<Relationship>* out) {
  if (!value.is_array()) return Expected(path, "an array of objects");
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item = IndexPath(path, i);
    if (!value[i].is_object()) return Expected(item, "an object");
    Relationship r;
    TROUPE_RETURN_IF_ERROR(ReadString(value[i], "target", item, &r.target));
    TROUPE_RETURN_IF_ERROR(ReadString(value[i], "relation", item, &r.relation));
    TROUPE_RETURN_IF_ERROR(ReadString(value[i], "description", item, &r.description));
    out->push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status ReadIdentity(const json& tp, absl::string_view path, Identity* out) {
  TROUPE_ASSIGN_OR_RETURN(const json* identity, FindObject(tp, "identity", path));
  if (!identity) return absl::OkStatus();
  const std::string p = JoinPath(path, "identity");
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "gender", p, &out->gender));
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "age", p, &out->age));
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "species", p, &out->species));
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "occupation", p, &out->occupation));
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "appearance", p, &out->appearance));
  TROUPE_RETURN_IF_ERROR(ReadString(*identity, "birthplace", p, &out->birthplace));
  return ReadString(*identity, "relationship_status", p, &out->relationship_status);
}

absl::Status ReadBehaviourAndPsychometrics(const json& tp, absl::string_view path,
                                           CharacterProfile* out) {
  TROUPE_ASSIGN_OR_RETURN(const json* behaviour, FindObject(tp, "behaviour", path));
  if (behaviour) {
    const std::string p = JoinPath(path, "behaviour");
    Behaviour& b = out->behaviour;
    TROUPE_RETURN_IF_ERROR(
        ReadString(*behaviour, "linguistic_features", p, &b.linguistic_features));
    TROUPE_RETURN_IF_ERROR(
        ReadString(*behaviour, "emotional_expressions", p, &b.emotional_expressions));
    TROUPE_RETURN_IF_ERROR(
        ReadString(*behaviour, "interaction_patterns", p, &b.interaction_patterns));
    TROUPE_RETURN_IF_ERROR(ReadStrings(*behaviour, "catchphrases", p, &b.catchphrases));
  }
  TROUPE_ASSIGN_OR_RETURN(const json* psychometrics, FindObject(tp, "psychometrics", path));
  if (psychometrics) {
    const std::string p = JoinPath(path, "psychometrics");
    if (const json* big_five = Find(*psychometrics, "big_five")) {
      out->psychometrics.big_five.emplace();
      TROUPE_RETURN_IF_ERROR(
          ToFloats(*big_five, JoinPath(p, "big_five"), 5, out->psychometrics.big_five->data()));
    }
    TROUPE_RETURN_IF_ERROR(
        ReadString(*psychometrics, "mbti_type", p, &out->psychometrics.mbti_type));
  }
  return absl::OkStatus();
}

// data.extensions["troupe/profile"]: see docs/characters.md for the layout.
absl::Status ReadTroupeProfile(const json& tp, absl::string_view path, CharacterProfile* out) {
  if (!tp.is_object()) return Expected(path, "an object");
  TROUPE_RETURN_IF_ERROR(ReadIdentity(tp, path, &out->identity));
  TROUPE_RETURN_IF_ERROR(ReadStrings(tp, "interests", path, &out->interests));
  TROUPE_RETURN_IF_ERROR(ReadStrings(tp, "viewpoints", path, &out->viewpoints));
  TROUPE_RETURN_IF_ERROR(ReadStrings(tp, "achievements", path, &out->achievements));
  if (const json* v = Find(tp, "experiences")) {
    TROUPE_RETURN_IF_ERROR(ReadExperiences(*v, JoinPath(path, "experiences"), &out->experiences));
  }
  if (const json* v = Find(tp, "relationships")) {
    TROUPE_RETURN_IF_ERROR(
        ReadRelationships(*v, JoinPath(path, "relationships"), &out->relationships));
  }
  return ReadBehaviourAndPsychometrics(tp, path, out);
}

// ---- import: lorebook ----

absl::Status ReadLoreEntry(const json& e, absl::string_view path, LoreEntry* out) {
  if (!e.is_object()) return Expected(path, "an object");
  TROUPE_RETURN_IF_ERROR(ReadStrings(e, "keys", path, &out->keys));
  TROUPE_RETURN_IF_ERROR(ReadStrings(e, "secondary_keys", path, &out->secondary_keys));
  TROUPE_RETURN_IF_ERROR(ReadBool(e, "selective", path, &out->selective));
  TROUPE_RETURN_IF_ERROR(ReadString(e, "content", path, &out->content));
  TROUPE_RETURN_IF_ERROR(ReadBool(e, "enabled", path, &out->enabled));
  TROUPE_RETURN_IF_ERROR(ReadInt(e, "insertion_order", path, &out->insertion_order));
  TROUPE_RETURN_IF_ERROR(ReadBool(e, "case_sensitive", path, &out->case_sensitive));
  TROUPE_RETURN_IF_ERROR(ReadString(e, "name", path, &out->name));
  TROUPE_RETURN_IF_ERROR(ReadInt(e, "priority", path, &out->priority));
  TROUPE_RETURN_IF_ERROR(ReadString(e, "comment", path, &out->comment));
  TROUPE_RETURN_IF_ERROR(ReadBool(e, "constant", path, &out->constant));
  TROUPE_RETURN_IF_ERROR(ReadBool(e, "use_regex", path, &out->use_regex));
  if (const json* id = Find(e, "id")) {  // V3 allows a number or a string
    if (id->is_string()) {
      out->string_id.emplace();
      TROUPE_RETURN_IF_ERROR(ToString(*id, JoinPath(path, "id"), &*out->string_id));
    } else if (id->is_number()) {
      TROUPE_RETURN_IF_ERROR(ReadInteger<int64_t>(e, "id", path, &out->id));
    } else {
      return Expected(JoinPath(path, "id"), "an integer or a string");
    }
  }
  std::string position;
  TROUPE_RETURN_IF_ERROR(ReadString(e, "position", path, &position));
  if (position == "after_char") {
    out->position = LorePosition::kAfterChar;
  } else if (!position.empty() && position != "before_char") {
    return Expected(JoinPath(path, "position"), "\"before_char\" or \"after_char\"");
  }
  TROUPE_ASSIGN_OR_RETURN(const json* extensions, FindObject(e, "extensions", path));
  if (extensions) out->extensions = *extensions;
  if (const auto it = out->extensions.find(kVisibleFromKey); it != out->extensions.end()) {
    if (it->is_null()) {
      out->extensions.erase(it);
      return absl::OkStatus();
    }
    out->visible_from.emplace();
    TROUPE_RETURN_IF_ERROR(ReadStoryTime(
        *it, JoinPath(JoinPath(path, "extensions"), kVisibleFromKey), &*out->visible_from));
    out->extensions.erase(it);
  }
  return absl::OkStatus();
}

absl::Status ReadLorebook(const json& book, absl::string_view path, Lorebook* out) {
  TROUPE_RETURN_IF_ERROR(ReadString(book, "name", path, &out->name));
  TROUPE_RETURN_IF_ERROR(ReadString(book, "description", path, &out->description));
  TROUPE_RETURN_IF_ERROR(ReadInteger<int>(book, "scan_depth", path, &out->scan_depth, 0));
  TROUPE_RETURN_IF_ERROR(ReadInteger<int>(book, "token_budget", path, &out->token_budget, 0));
  TROUPE_RETURN_IF_ERROR(ReadBool(book, "recursive_scanning", path, &out->recursive_scanning));
  TROUPE_ASSIGN_OR_RETURN(const json* extensions, FindObject(book, "extensions", path));
  if (extensions) out->extensions = *extensions;
  const json* entries = Find(book, "entries");
  if (!entries) return absl::OkStatus();
  const std::string entries_path = JoinPath(path, "entries");
  if (!entries->is_array()) return Expected(entries_path, "an array of entries");
  if (entries->size() > kMaxLoreEntries) {
    return OverLimit(entries_path, entries->size(), "entries", kMaxLoreEntries);
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    LoreEntry entry;
    TROUPE_RETURN_IF_ERROR(ReadLoreEntry((*entries)[i], IndexPath(entries_path, i), &entry));
    entry.source_index = static_cast<int>(i);
    out->entries.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

// ---- import: the card ----

// Reads a V1 field from data (when the card has it there) or else from the top level.
absl::Status ReadCoreString(const json& card, const json* data, const char* key, std::string* out) {
  if (data && Find(*data, key)) return ReadString(*data, key, "data", out);
  return ReadString(card, key, "", out);
}

absl::Status ReadCoreFields(const json& card, const json* data, CharacterProfile* p) {
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "name", &p->name));
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "description", &p->description));
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "personality", &p->personality));
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "scenario", &p->scenario));
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "first_mes", &p->first_message));
  TROUPE_RETURN_IF_ERROR(ReadCoreString(card, data, "mes_example", &p->mes_example));
  if (Strip(p->name).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(data ? "data.name" : "name", ": missing or empty; a card needs a name"));
  }
  return absl::OkStatus();
}

// V2 and V3 fields under `data`.
absl::Status ReadDataFields(const json& d, CharacterProfile* p) {
  TROUPE_RETURN_IF_ERROR(ReadString(d, "creator_notes", "data", &p->creator_notes));
  TROUPE_RETURN_IF_ERROR(ReadString(d, "system_prompt", "data", &p->system_prompt));
  TROUPE_RETURN_IF_ERROR(
      ReadString(d, "post_history_instructions", "data", &p->post_history_instructions));
  TROUPE_RETURN_IF_ERROR(
      ReadStrings(d, "alternate_greetings", "data", &p->alternate_greetings, kMaxGreetings));
  TROUPE_RETURN_IF_ERROR(ReadStrings(d, "tags", "data", &p->tags));
  TROUPE_RETURN_IF_ERROR(ReadString(d, "creator", "data", &p->creator));
  TROUPE_RETURN_IF_ERROR(ReadString(d, "character_version", "data", &p->character_version));
  // V3 additions.
  TROUPE_RETURN_IF_ERROR(ReadString(d, "nickname", "data", &p->nickname));
  TROUPE_RETURN_IF_ERROR(
      ReadStrings(d, "group_only_greetings", "data", &p->group_only_greetings, kMaxGreetings));
  TROUPE_RETURN_IF_ERROR(ReadStrings(d, "source", "data", &p->source));
  TROUPE_RETURN_IF_ERROR(ReadInteger<int64_t>(d, "creation_date", "data", &p->creation_date));
  TROUPE_RETURN_IF_ERROR(
      ReadInteger<int64_t>(d, "modification_date", "data", &p->modification_date));
  TROUPE_ASSIGN_OR_RETURN(const json* notes, FindObject(d, "creator_notes_multilingual", "data"));
  if (notes) {
    const std::string path = "data.creator_notes_multilingual";
    for (const auto& [language, text] : notes->items()) {
      TROUPE_RETURN_IF_ERROR(
          ToString(text, JoinPath(path, language), &p->creator_notes_multilingual[language]));
    }
  }
  TROUPE_ASSIGN_OR_RETURN(const json* book, FindObject(d, "character_book", "data"));
  if (book) {
    p->lorebook.emplace();
    TROUPE_RETURN_IF_ERROR(ReadLorebook(*book, "data.character_book", &*p->lorebook));
  }
  TROUPE_ASSIGN_OR_RETURN(const json* extensions, FindObject(d, "extensions", "data"));
  if (extensions) p->extensions = *extensions;
  if (const auto it = p->extensions.find(kTroupeProfileKey); it != p->extensions.end()) {
    if (it->is_null()) {
      p->extensions.erase(it);
      return absl::OkStatus();
    }
    TROUPE_RETURN_IF_ERROR(
        ReadTroupeProfile(*it, JoinPath("data.extensions", kTroupeProfileKey), p));
    p->extensions.erase(it);
  }
  return absl::OkStatus();
}

// ---- export ----

// Writes `value` under `key`, except that an optional field holding its default stays as
// the source had it: absent, or null.
void Put(json& object, const char* key, json value, bool is_default, bool required) {
  if (is_default && !required) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return;
  }
  object[key] = std::move(value);
}

// Writes `value` when set; otherwise removes the key unless the source had null there.
void PutOptional(json& object, const char* key, std::optional<json> value) {
  if (value) {
    object[key] = *std::move(value);
    return;
  }
  const auto it = object.find(key);
  if (it != object.end() && !it->is_null()) object.erase(it);
}

// Sets object[key] to `value`, or erases the key when `value` is empty (a sub-object of
// troupe/profile that no longer says anything).
void PutOrErase(json& object, const char* key, json value) {
  if (value.empty()) {
    object.erase(key);
  } else {
    object[key] = std::move(value);
  }
}

// Floats as the doubles nearest their shortest decimal forms, so 3.1f is written 3.1, not
// 3.0999999046325684, and 7.0f as 7: a card's numbers come back as written.
json FloatsJson(std::span<const float> values) {
  json out = json::array();
  for (const float v : values) {
    char buf[32];
    const auto written = std::to_chars(buf, buf + sizeof(buf), v);
    double d = v;
    if (written.ec == std::errc()) std::from_chars(buf, written.ptr, d);
    if (d == std::floor(d) && std::fabs(d) < 1e15) {
      out.push_back(static_cast<int64_t>(d));  // 7, not 7.0
    } else {
      out.push_back(d);
    }
  }
  return out;
}

json StoryTimeJson(const StoryTime& t) {
  json out = {{"ordinal", t.ordinal}};
  if (!t.label.empty()) out["label"] = t.label;
  return out;
}

// Known keys of data.extensions["troupe/profile"], patched into `tp` (the source's object,
// whose other keys are kept; so are other keys of identity, behaviour and psychometrics).
void WriteTroupeProfile(const CharacterProfile& p, json& tp) {
  auto sub = [&](const char* key) {
    return tp.contains(key) && tp[key].is_object() ? tp[key] : json::object();
  };
  auto text = [](json& object, const char* key, const std::string& value) {
    PutOrErase(object, key, value.empty() ? json() : json(value));
  };
  json identity = sub("identity");
  text(identity, "gender", p.identity.gender);
  text(identity, "age", p.identity.age);
  text(identity, "species", p.identity.species);
  text(identity, "occupation", p.identity.occupation);
  text(identity, "appearance", p.identity.appearance);
  text(identity, "birthplace", p.identity.birthplace);
  text(identity, "relationship_status", p.identity.relationship_status);
  PutOrErase(tp, "identity", std::move(identity));
  PutOrErase(tp, "interests", p.interests);
  PutOrErase(tp, "viewpoints", p.viewpoints);
  PutOrErase(tp, "achievements", p.achievements);
  json experiences = json::array();
  for (const Experience& e : p.experiences) {
    json item = {{"text", e.text}};
    if (e.when) item["when"] = StoryTimeJson(*e.when);
    if (e.emotion) item["emotion"] = FloatsJson(*e.emotion);
    experiences.push_back(std::move(item));
  }
  PutOrErase(tp, "experiences", std::move(experiences));
  json relationships = json::array();
  for (const Relationship& r : p.relationships) {
    relationships.push_back(
        {{"target", r.target}, {"relation", r.relation}, {"description", r.description}});
  }
  PutOrErase(tp, "relationships", std::move(relationships));
  json behaviour = sub("behaviour");
  text(behaviour, "linguistic_features", p.behaviour.linguistic_features);
  text(behaviour, "emotional_expressions", p.behaviour.emotional_expressions);
  text(behaviour, "interaction_patterns", p.behaviour.interaction_patterns);
  PutOrErase(behaviour, "catchphrases", p.behaviour.catchphrases);
  PutOrErase(tp, "behaviour", std::move(behaviour));
  json psychometrics = sub("psychometrics");
  PutOrErase(psychometrics, "big_five",
             p.psychometrics.big_five ? FloatsJson(*p.psychometrics.big_five) : json());
  text(psychometrics, "mbti_type", p.psychometrics.mbti_type);
  PutOrErase(tp, "psychometrics", std::move(psychometrics));
}

json EntryJson(const LoreEntry& e, const json& raw_entries, bool v3) {
  json out = json::object();
  if (e.source_index >= 0 && static_cast<size_t>(e.source_index) < raw_entries.size() &&
      raw_entries[e.source_index].is_object()) {
    out = raw_entries[e.source_index];
  }
  json extensions = e.extensions.is_object() ? e.extensions : json::object();
  if (e.visible_from) extensions[kVisibleFromKey] = StoryTimeJson(*e.visible_from);
  Put(out, "keys", e.keys, false, true);
  Put(out, "content", e.content, false, true);
  Put(out, "extensions", std::move(extensions), false, true);
  Put(out, "enabled", e.enabled, false, true);
  Put(out, "insertion_order", e.insertion_order, false, true);
  Put(out, "case_sensitive", e.case_sensitive, !e.case_sensitive, false);
  Put(out, "name", e.name, e.name.empty(), false);
  Put(out, "priority", e.priority, e.priority == 0, false);
  PutOptional(out, "id",
              e.id          ? std::optional<json>(*e.id)
              : e.string_id ? std::optional<json>(*e.string_id)
                            : std::nullopt);
  Put(out, "comment", e.comment, e.comment.empty(), false);
  Put(out, "selective", e.selective, !e.selective, false);
  Put(out, "secondary_keys", e.secondary_keys, e.secondary_keys.empty(), false);
  Put(out, "constant", e.constant, !e.constant, v3);
  const bool after = e.position == LorePosition::kAfterChar;
  Put(out, "position", after ? "after_char" : "before_char", !after, false);
  Put(out, "use_regex", e.use_regex, !e.use_regex, v3);
  return out;
}

void WriteLorebook(const Lorebook& book, bool v3, json& out) {
  if (!out.is_object()) out = json::object();
  const json raw_entries = out.contains("entries") && out["entries"].is_array()
                               ? std::move(out["entries"])
                               : json::array();
  Put(out, "name", book.name, book.name.empty(), false);
  Put(out, "description", book.description, book.description.empty(), false);
  PutOptional(out, "scan_depth",
              book.scan_depth ? std::optional<json>(*book.scan_depth) : std::nullopt);
  PutOptional(out, "token_budget",
              book.token_budget ? std::optional<json>(*book.token_budget) : std::nullopt);
  Put(out, "recursive_scanning", book.recursive_scanning, !book.recursive_scanning, false);
  Put(out, "extensions", book.extensions.is_object() ? book.extensions : json::object(), false,
      true);
  json entries = json::array();
  for (const LoreEntry& e : book.entries) entries.push_back(EntryJson(e, raw_entries, v3));
  out["entries"] = std::move(entries);
}

void WriteData(const CharacterProfile& p, bool v3, json& d) {
  Put(d, "name", p.name, false, true);
  Put(d, "description", p.description, false, true);
  Put(d, "personality", p.personality, false, true);
  Put(d, "scenario", p.scenario, false, true);
  Put(d, "first_mes", p.first_message, false, true);
  Put(d, "mes_example", p.mes_example, false, true);
  Put(d, "creator_notes", p.creator_notes, false, true);
  Put(d, "system_prompt", p.system_prompt, false, true);
  Put(d, "post_history_instructions", p.post_history_instructions, false, true);
  Put(d, "alternate_greetings", p.alternate_greetings, false, true);
  Put(d, "tags", p.tags, false, true);
  Put(d, "creator", p.creator, false, true);
  Put(d, "character_version", p.character_version, false, true);
  Put(d, "nickname", p.nickname, p.nickname.empty(), false);
  Put(d, "group_only_greetings", p.group_only_greetings, p.group_only_greetings.empty(), v3);
  Put(d, "creator_notes_multilingual", p.creator_notes_multilingual,
      p.creator_notes_multilingual.empty(), false);
  Put(d, "source", p.source, p.source.empty(), false);
  PutOptional(d, "creation_date",
              p.creation_date ? std::optional<json>(*p.creation_date) : std::nullopt);
  PutOptional(d, "modification_date",
              p.modification_date ? std::optional<json>(*p.modification_date) : std::nullopt);
  if (p.lorebook) {
    WriteLorebook(*p.lorebook, v3, d["character_book"]);
  } else {
    PutOptional(d, "character_book", std::nullopt);
  }
  json tp = json::object();
  if (d.contains("extensions") && d["extensions"].is_object() &&
      d["extensions"].contains(kTroupeProfileKey) &&
      d["extensions"][kTroupeProfileKey].is_object()) {
    tp = d["extensions"][kTroupeProfileKey];
  }
  WriteTroupeProfile(p, tp);
  json extensions = p.extensions.is_object() ? p.extensions : json::object();
  PutOrErase(extensions, kTroupeProfileKey, std::move(tp));
  d["extensions"] = std::move(extensions);
}

// ---- text helpers ----

bool LineStartsWithSpeaker(std::string_view line, std::string_view speaker, bool ignore_case) {
  if (line.size() <= speaker.size() || line[speaker.size()] != ':') return false;
  return ignore_case ? StartsWithNoCase(line, speaker) : line.substr(0, speaker.size()) == speaker;
}

void AppendTurnLine(std::string_view line, ExampleDialogue* block) {
  std::string& text = block->turns.back().text;
  if (!text.empty()) text += '\n';
  text += line;
}

void FinishBlock(ExampleDialogue* block, std::vector<ExampleDialogue>* out) {
  std::vector<DialogueTurn> kept;
  for (DialogueTurn& turn : block->turns) {
    turn.text = std::string(Strip(turn.text));
    if (!turn.speaker.empty() || !turn.text.empty()) kept.push_back(std::move(turn));
  }
  if (!kept.empty()) out->push_back(ExampleDialogue{std::move(kept)});
  block->turns.clear();
}

// Replaces every case-insensitive occurrence of each `from` with its `to`, in one pass.
std::string ReplaceIgnoreCase(
    std::string_view text,
    std::initializer_list<std::pair<std::string_view, std::string_view>> rules) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool replaced = false;
    for (const auto& [from, to] : rules) {
      if (StartsWithNoCase(text.substr(i), from)) {
        out += to;
        i += from.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

}  // namespace

absl::StatusOr<CharacterProfile> ParseCharacterCard(std::string_view json_text) {
  if (json_text.size() > kMaxCardBytes) {
    return OverLimit("card", json_text.size(), "bytes", kMaxCardBytes);
  }
  if (!WithinDepth(json_text, kMaxCardJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat("card: JSON nested deeper than ", kMaxCardJsonDepth, " levels"));
  }
  json card;
  try {
    card = json::parse(json_text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("card: invalid JSON: ", e.what()));
  }
  if (!card.is_object()) return Expected("card", "a JSON object");

  CharacterProfile profile;
  const json* data = nullptr;
  const json* spec = Find(card, "spec");
  if (!spec) {
    profile.import_format = "chara_card_v1";
  } else if (spec->is_string() && (*spec == kSpecV2 || *spec == kSpecV3)) {
    profile.import_format = spec->get<std::string>();
    data = Find(card, "data");
    if (!data || !data->is_object()) return Expected("data", "an object");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec: unsupported ", spec->dump(-1, ' ', false, json::error_handler_t::replace),
        "; accepted: \"", kSpecV2, "\", \"", kSpecV3, "\", or no spec for a V1 card"));
  }
  TROUPE_RETURN_IF_ERROR(ReadCoreFields(card, data, &profile));
  if (data) TROUPE_RETURN_IF_ERROR(ReadDataFields(*data, &profile));
  std::vector<std::string> speakers = {profile.name};
  if (!profile.nickname.empty()) speakers.push_back(profile.nickname);
  profile.example_dialogues = ParseExampleDialogues(profile.mes_example, speakers);
  profile.raw_card_json = std::string(json_text);
  return profile;
}

std::string ToCharacterCardJson(const CharacterProfile& profile, CardSpec spec) {
  json card = json::object();
  if (!profile.raw_card_json.empty() && WithinDepth(profile.raw_card_json, kMaxCardJsonDepth)) {
    json raw = json::parse(profile.raw_card_json, nullptr, /*allow_exceptions=*/false);
    if (raw.is_object()) card = std::move(raw);
  }
  const bool v3 = spec == CardSpec::kV3;
  const char* spec_name = v3 ? kSpecV3 : kSpecV2;
  const bool same_spec = card.contains("spec") && card["spec"] == spec_name;
  card["spec"] = spec_name;
  if (!same_spec || !card.contains("spec_version")) card["spec_version"] = v3 ? "3.0" : "2.0";
  const std::string* v1_values[] = {&profile.name,          &profile.description,
                                    &profile.personality,   &profile.scenario,
                                    &profile.first_message, &profile.mes_example};
  for (size_t i = 0; i < std::size(kV1Fields); ++i) {
    if (card.contains(kV1Fields[i])) card[kV1Fields[i]] = *v1_values[i];
  }
  json& data = card["data"];
  if (!data.is_object()) data = json::object();
  WriteData(profile, v3, data);
  return card.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<ExampleDialogue> ParseExampleDialogues(std::string_view mes_example,
                                                   std::span<const std::string> speaker_names) {
  static constexpr std::pair<std::string_view, std::string_view> kMacroSpeakers[] = {
      {"{{user}}", "{{user}}"},
      {"<USER>", "{{user}}"},
      {"{{char}}", "{{char}}"},
      {"<BOT>", "{{char}}"}};
  std::vector<ExampleDialogue> blocks;
  ExampleDialogue block;
  size_t pos = 0;
  while (pos <= mes_example.size()) {
    size_t end = mes_example.find('\n', pos);
    if (end == std::string_view::npos) end = mes_example.size();
    std::string_view line = mes_example.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A <START> marker may share its line with text; split around each one.
    while (true) {
      const std::string_view stripped = StripLeading(line);
      if (StartsWithNoCase(stripped, "<START>")) {
        FinishBlock(&block, &blocks);
        line = stripped.substr(7);
        if (Strip(line).empty()) break;
        continue;
      }
      std::string_view speaker, rest;
      for (const auto& [macro, normalized] : kMacroSpeakers) {
        if (LineStartsWithSpeaker(stripped, macro, true)) {
          speaker = normalized;
          rest = stripped.substr(macro.size() + 1);
        }
      }
      for (const std::string& name : speaker_names) {
        if (speaker.empty() && !name.empty() && LineStartsWithSpeaker(stripped, name, false)) {
          speaker = name;
          rest = stripped.substr(name.size() + 1);
        }
      }
      if (!speaker.empty()) {
        block.turns.push_back({std::string(speaker), std::string(rest)});
      } else if (block.turns.empty()) {
        block.turns.push_back({"", std::string(line)});
      } else {
        AppendTurnLine(line, &block);
      }
      break;
    }
  }
  FinishBlock(&block, &blocks);
  return blocks;
}

const std::string& MacroCharName(const CharacterProfile& profile) {
  return profile.nickname.empty() ? profile.name : profile.nickname;
}

std::string SubstituteMacros(std::string_view text, std::string_view char_name,
                             std::string_view user_name) {
  return ReplaceIgnoreCase(text, {{"{{char}}", char_name},
                                  {"<BOT>", char_name},
                                  {"{{user}}", user_name},
                                  {"<USER>", user_name}});
}

std::string ResolvePromptOverride(std::string_view card_value, std::string_view global_value) {
  if (Strip(card_value).empty()) return std::string(global_value);
  return ReplaceIgnoreCase(card_value, {{"{{original}}", global_value}});
}

}  // namespace troupe
