#include "server/proto_convert.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/character/card_json.h"
#include "engine/character/card_png.h"
#include "engine/character/character_card.h"
#include "server/limits.h"

namespace troupe {
namespace {

constexpr int kMaxTopLogprobs = 20;
constexpr char kServerVersion[] = "0.1.0";

absl::Status CheckText(const std::string& text, const std::string& field, size_t limit = kMaxCardTextBytes) {
  if (text.size() > limit) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", text.size(), " bytes; the limit is ", limit));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> JsonObject(const std::string& text, const std::string& field) {
  if (text.empty()) return nlohmann::json::object();
  TROUPE_RETURN_IF_ERROR(CheckText(text, field));
  // nlohmann parses, copies and destroys recursively: a deep enough nesting overflows the stack.
  if (!card_json::WithinDepth(text, kMaxCardJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": JSON nested deeper than ", kMaxCardJsonDepth, " levels"));
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(field, ": not a JSON object"));
  return j;
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

template <typename Repeated>
void SetStrings(const std::vector<std::string>& v, Repeated* out) {
  for (const std::string& s : v) out->Add(std::string(s));
}

std::optional<StoryTime> StoryTimeFromProto(bool has, const v1::StoryTime& p) {
  if (!has) return std::nullopt;
  return StoryTime{p.ordinal(), p.label()};
}

void StoryTimeToProto(const StoryTime& t, v1::StoryTime* p) {
  p->set_ordinal(t.ordinal);
  p->set_label(t.label);
}

absl::StatusOr<LoreEntry> LoreFromProto(const v1::LoreEntry& p, const std::string& field) {
  LoreEntry e;
  e.keys = Strings(p.keys());
  e.secondary_keys = Strings(p.secondary_keys());
  e.selective = p.selective();
  TROUPE_RETURN_IF_ERROR(CheckText(p.content(), field + ".content"));
  e.content = p.content();
  e.enabled = p.enabled();
  e.insertion_order = p.insertion_order();
  e.case_sensitive = p.case_sensitive();
  e.name = p.name();
  e.priority = p.priority();
  if (p.has_id()) e.id = p.id();
  if (!p.string_id().empty()) e.string_id = p.string_id();
  e.comment = p.comment();
  e.constant = p.constant();
  e.position = p.position() == v1::LoreEntry::POSITION_AFTER_CHAR ? LorePosition::kAfterChar
                                                                  : LorePosition::kBeforeChar;
  e.use_regex = p.use_regex();
  e.visible_from = StoryTimeFromProto(p.has_visible_from(), p.visible_from());
  TROUPE_ASSIGN_OR_RETURN(e.extensions, JsonObject(p.extensions_json(), field + ".extensions_json"));
  e.source_index = p.has_source_index() ? p.source_index() : -1;
  return e;
}

void LoreToProto(const LoreEntry& e, v1::LoreEntry* p) {
  SetStrings(e.keys, p->mutable_keys());
  SetStrings(e.secondary_keys, p->mutable_secondary_keys());
  p->set_selective(e.selective);
  p->set_content(e.content);
  p->set_enabled(e.enabled);
  p->set_insertion_order(e.insertion_order);
  p->set_case_sensitive(e.case_sensitive);
  p->set_name(e.name);
  p->set_priority(e.priority);
  if (e.id) p->set_id(*e.id);
  if (e.string_id) p->set_string_id(*e.string_id);
  p->set_comment(e.comment);
  p->set_constant(e.constant);
  p->set_position(e.position == LorePosition::kAfterChar ? v1::LoreEntry::POSITION_AFTER_CHAR
                                                         : v1::LoreEntry::POSITION_BEFORE_CHAR);
  p->set_use_regex(e.use_regex);
  if (e.visible_from) StoryTimeToProto(*e.visible_from, p->mutable_visible_from());
  if (!e.extensions.empty()) p->set_extensions_json(e.extensions.dump());
  if (e.source_index >= 0) p->set_source_index(e.source_index);
}

// ProfileFromRequest for either request.
template <typename Req>
absl::StatusOr<CharacterProfile> ProfileOfRequest(const Req& request) {
  switch (request.source_case()) {
    case Req::kProfile:
      return ProfileFromProto(request.profile());
    case Req::kCardJson:
      if (request.card_json().size() > kMaxCardBytes) {
        return absl::InvalidArgumentError(absl::StrCat("card_json: ", request.card_json().size(),
                                                       " bytes; the limit is ", kMaxCardBytes));
      }
      return ParseCharacterCard(request.card_json());
    case Req::kCardPng: {
      if (request.card_png().size() > kMaxCardPngBytes) {
        return absl::InvalidArgumentError(absl::StrCat("card_png: ", request.card_png().size(),
                                                       " bytes; the limit is ", kMaxCardPngBytes));
      }
      absl::StatusOr<std::string> json = ReadCardFromPng(request.card_png());
      if (!json.ok()) return absl::InvalidArgumentError(absl::StrCat("card_png: ", json.status().message()));
      return ParseCharacterCard(*json);
    }
    default:
      return absl::InvalidArgumentError("set one of profile, card_json or card_png");
  }
}

}  // namespace

// ---- generation ----

absl::StatusOr<SamplingParams> SamplingFromProto(const v1::SamplingParams& proto,
                                                 const SamplingParams& defaults) {
  SamplingParams params = defaults;
  if (proto.has_temperature()) params.temperature = proto.temperature();
  if (proto.has_top_k()) params.top_k = proto.top_k();
  if (proto.has_top_p()) params.top_p = proto.top_p();
  if (proto.has_min_p()) params.min_p = proto.min_p();
  if (proto.has_repetition_penalty()) params.repetition_penalty = proto.repetition_penalty();
  if (proto.has_presence_penalty()) params.presence_penalty = proto.presence_penalty();
  if (proto.has_frequency_penalty()) params.frequency_penalty = proto.frequency_penalty();
  if (proto.has_penalty_last_n()) params.penalty_last_n = proto.penalty_last_n();
  if (proto.has_seed()) params.seed = proto.seed();
  if (proto.has_max_tokens()) params.max_tokens = proto.max_tokens();
  params.stop.assign(proto.stop().begin(), proto.stop().end());
  if (proto.has_dry_multiplier()) params.dry_multiplier = proto.dry_multiplier();
  if (proto.has_dry_base()) params.dry_base = proto.dry_base();
  if (proto.has_dry_allowed_length()) params.dry_allowed_length = proto.dry_allowed_length();
  if (proto.has_dry_penalty_last_n()) params.dry_penalty_last_n = proto.dry_penalty_last_n();
  if (proto.has_dry_sequence_breakers()) {
    params.dry_sequence_breakers.assign(proto.dry_sequence_breakers().values().begin(),
                                        proto.dry_sequence_breakers().values().end());
  }
  if (proto.has_xtc_probability()) params.xtc_probability = proto.xtc_probability();
  if (proto.has_xtc_threshold()) params.xtc_threshold = proto.xtc_threshold();
  params.ignore_eos = proto.ignore_eos();

  if (proto.top_logprobs() < 0 || proto.top_logprobs() > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_logprobs must be in 0..",
                                                   kMaxTopLogprobs, ", got ",
                                                   proto.top_logprobs()));
  }
  if (proto.top_logprobs() > 0 && !proto.logprobs()) {
    return absl::InvalidArgumentError("sampling.top_logprobs needs sampling.logprobs=true");
  }
  params.logprobs = proto.logprobs() ? proto.top_logprobs() : -1;
  for (const std::string& stop : params.stop) {
    if (stop.empty()) return absl::InvalidArgumentError("sampling.stop has an empty string");
  }
  if (proto.stop_size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop must have at most ", kMaxStopStrings,
                                                   " strings, got ", proto.stop_size()));
  }
  if (absl::Status status = ValidateSamplingParams(params); !status.ok()) return status;
  return params;
}

v1::FinishReason FinishReasonToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
    case FinishReason::kError: break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void ModelInfoToProto(const ModelInfo& info, v1::ServerInfo* proto) {
  proto->set_model_name(info.name);
  proto->set_architecture(info.architecture);
  proto->set_context_length(info.max_model_len);
  proto->set_vocab_size(info.vocab_size);
  proto->set_chat_family(std::string(ChatFamilyName(info.chat_family)));
  proto->set_num_parameters(info.num_parameters);
  proto->set_server_version(kServerVersion);
}

// ---- characters ----

absl::StatusOr<CharacterProfile> ProfileFromProto(const v1::CharacterProfile& p) {
  CharacterProfile c;
  if (p.name().empty()) return absl::InvalidArgumentError("profile.name is empty");
  const std::pair<const std::string*, const char*> texts[] = {
      {&p.name(), "name"}, {&p.nickname(), "nickname"}, {&p.description(), "description"},
      {&p.personality(), "personality"}, {&p.scenario(), "scenario"},
      {&p.first_message(), "first_message"}, {&p.mes_example(), "mes_example"},
      {&p.system_prompt(), "system_prompt"}, {&p.post_history_instructions(), "post_history_instructions"},
      {&p.creator_notes(), "creator_notes"}};
  for (const auto& [text, name] : texts) TROUPE_RETURN_IF_ERROR(CheckText(*text, absl::StrCat("profile.", name)));
  if (p.alternate_greetings_size() > static_cast<int>(kMaxGreetings)) {
    return absl::InvalidArgumentError(absl::StrCat("profile.alternate_greetings: ", p.alternate_greetings_size(),
                                                   " greetings; the limit is ", kMaxGreetings));
  }
  c.name = p.name();
  c.nickname = p.nickname();
  c.description = p.description();
  c.personality = p.personality();
  c.scenario = p.scenario();
  c.first_message = p.first_message();
  c.alternate_greetings = Strings(p.alternate_greetings());
  c.group_only_greetings = Strings(p.group_only_greetings());
  c.mes_example = p.mes_example();
  c.system_prompt = p.system_prompt();
  c.post_history_instructions = p.post_history_instructions();
  c.creator = p.creator();
  c.creator_notes = p.creator_notes();
  c.creator_notes_multilingual = {p.creator_notes_multilingual().begin(), p.creator_notes_multilingual().end()};
  c.tags = Strings(p.tags());
  c.character_version = p.character_version();
  c.source = Strings(p.source());
  if (p.has_creation_date()) c.creation_date = p.creation_date();
  if (p.has_modification_date()) c.modification_date = p.modification_date();
  const v1::CharacterIdentity& id = p.identity();
  c.identity = Identity{id.gender(), id.age(), id.species(), id.occupation(), id.appearance(),
                        id.birthplace(), id.relationship_status()};
  c.interests = Strings(p.interests());
  c.viewpoints = Strings(p.viewpoints());
  for (int i = 0; i < p.experiences_size(); ++i) {
    const v1::CharacterExperience& x = p.experiences(i);
    Experience e;
    e.text = x.text();
    e.when = StoryTimeFromProto(x.has_when(), x.when());
    if (x.has_emotion()) {
      TROUPE_ASSIGN_OR_RETURN(e.emotion, EmotionFromProto(x.emotion(), absl::StrCat("profile.experiences[", i, "].emotion")));
    }
    c.experiences.push_back(std::move(e));
  }
  c.achievements = Strings(p.achievements());
  for (const v1::CharacterRelationship& r : p.relationships()) {
    c.relationships.push_back(Relationship{r.target(), r.relation(), r.description()});
  }
  c.behaviour.linguistic_features = p.behaviour().linguistic_features();
  c.behaviour.emotional_expressions = p.behaviour().emotional_expressions();
  c.behaviour.interaction_patterns = p.behaviour().interaction_patterns();
  c.behaviour.catchphrases = Strings(p.behaviour().catchphrases());
  if (p.psychometrics().big_five_size() != 0) {
    if (p.psychometrics().big_five_size() != 5) {
      return absl::InvalidArgumentError(absl::StrCat("profile.psychometrics.big_five: ",
                                                     p.psychometrics().big_five_size(), " values; give exactly 5"));
    }
    std::array<float, 5> b5;
    for (int i = 0; i < 5; ++i) b5[i] = p.psychometrics().big_five(i);
    c.psychometrics.big_five = b5;
  }
  c.psychometrics.mbti_type = p.psychometrics().mbti_type();
  if (p.has_lorebook()) {
    const v1::Lorebook& b = p.lorebook();
    if (b.entries_size() > static_cast<int>(kMaxLoreEntries)) {
      return absl::InvalidArgumentError(absl::StrCat("profile.lorebook.entries: ", b.entries_size(),
                                                     " entries; the limit is ", kMaxLoreEntries));
    }
    Lorebook book;
    book.name = b.name();
    book.description = b.description();
    if (b.has_scan_depth()) book.scan_depth = b.scan_depth();
    if (b.has_token_budget()) book.token_budget = b.token_budget();
    book.recursive_scanning = b.recursive_scanning();
    for (int i = 0; i < b.entries_size(); ++i) {
      TROUPE_ASSIGN_OR_RETURN(LoreEntry e, LoreFromProto(b.entries(i), absl::StrCat("profile.lorebook.entries[", i, "]")));
      book.entries.push_back(std::move(e));
    }
    TROUPE_ASSIGN_OR_RETURN(book.extensions, JsonObject(b.extensions_json(), "profile.lorebook.extensions_json"));
    c.lorebook = std::move(book);
  }
  TROUPE_ASSIGN_OR_RETURN(c.extensions, JsonObject(p.extensions_json(), "profile.extensions_json"));
  c.example_dialogues = ParseExampleDialogues(c.mes_example, std::vector<std::string>{c.name});
  return c;
}

void ProfileToProto(const CharacterProfile& c, v1::CharacterProfile* p) {
  p->set_name(c.name);
  p->set_nickname(c.nickname);
  p->set_description(c.description);
  p->set_personality(c.personality);
  p->set_scenario(c.scenario);
  p->set_first_message(c.first_message);
  SetStrings(c.alternate_greetings, p->mutable_alternate_greetings());
  SetStrings(c.group_only_greetings, p->mutable_group_only_greetings());
  p->set_mes_example(c.mes_example);
  for (const ExampleDialogue& d : c.example_dialogues) {
    v1::ExampleDialogue* out = p->add_example_dialogues();
    for (const DialogueTurn& t : d.turns) {
      v1::DialogueTurn* turn = out->add_turns();
      turn->set_speaker(t.speaker);
      turn->set_text(t.text);
    }
  }
  p->set_system_prompt(c.system_prompt);
  p->set_post_history_instructions(c.post_history_instructions);
  p->set_creator(c.creator);
  p->set_creator_notes(c.creator_notes);
  for (const auto& [lang, notes] : c.creator_notes_multilingual) (*p->mutable_creator_notes_multilingual())[lang] = notes;
  SetStrings(c.tags, p->mutable_tags());
  p->set_character_version(c.character_version);
  SetStrings(c.source, p->mutable_source());
  if (c.creation_date) p->set_creation_date(*c.creation_date);
  if (c.modification_date) p->set_modification_date(*c.modification_date);
  v1::CharacterIdentity* id = p->mutable_identity();
  id->set_gender(c.identity.gender);
  id->set_age(c.identity.age);
  id->set_species(c.identity.species);
  id->set_occupation(c.identity.occupation);
  id->set_appearance(c.identity.appearance);
  id->set_birthplace(c.identity.birthplace);
  id->set_relationship_status(c.identity.relationship_status);
  SetStrings(c.interests, p->mutable_interests());
  SetStrings(c.viewpoints, p->mutable_viewpoints());
  for (const Experience& e : c.experiences) {
    v1::CharacterExperience* x = p->add_experiences();
    x->set_text(e.text);
    if (e.when) StoryTimeToProto(*e.when, x->mutable_when());
    if (e.emotion) EmotionToProto(*e.emotion, x->mutable_emotion());
  }
  SetStrings(c.achievements, p->mutable_achievements());
  for (const Relationship& r : c.relationships) {
    v1::CharacterRelationship* out = p->add_relationships();
    out->set_target(r.target);
    out->set_relation(r.relation);
    out->set_description(r.description);
  }
  v1::CharacterBehaviour* b = p->mutable_behaviour();
  b->set_linguistic_features(c.behaviour.linguistic_features);
  b->set_emotional_expressions(c.behaviour.emotional_expressions);
  b->set_interaction_patterns(c.behaviour.interaction_patterns);
  SetStrings(c.behaviour.catchphrases, b->mutable_catchphrases());
  if (c.psychometrics.big_five) {
    for (float v : *c.psychometrics.big_five) p->mutable_psychometrics()->add_big_five(v);
  }
  p->mutable_psychometrics()->set_mbti_type(c.psychometrics.mbti_type);
  if (c.lorebook) {
    v1::Lorebook* book = p->mutable_lorebook();
    book->set_name(c.lorebook->name);
    book->set_description(c.lorebook->description);
    if (c.lorebook->scan_depth) book->set_scan_depth(*c.lorebook->scan_depth);
    if (c.lorebook->token_budget) book->set_token_budget(*c.lorebook->token_budget);
    book->set_recursive_scanning(c.lorebook->recursive_scanning);
    for (const LoreEntry& e : c.lorebook->entries) LoreToProto(e, book->add_entries());
    if (!c.lorebook->extensions.empty()) book->set_extensions_json(c.lorebook->extensions.dump());
  }
  if (!c.extensions.empty()) p->set_extensions_json(c.extensions.dump());
}

void StoredCharacterToProto(const StoredCharacter& c, v1::StoredCharacter* p) {
  p->set_character_id(c.id);
  ProfileToProto(c.profile, p->mutable_profile());
  p->set_import_format(c.profile.import_format);
  p->set_create_time_unix_ms(c.create_time_ms);
  p->set_update_time_unix_ms(c.update_time_ms);
}

absl::StatusOr<CharacterProfile> ProfileFromRequest(const v1::CreateCharacterRequest& request) {
  return ProfileOfRequest(request);
}

absl::StatusOr<CharacterProfile> ProfileFromRequest(const v1::UpdateCharacterRequest& request) {
  return ProfileOfRequest(request);
}

absl::StatusOr<EmotionVector> EmotionFromProto(const v1::EmotionVector& p, const std::string& field) {
  const EmotionVector v = {p.joy(), p.acceptance(), p.fear(), p.surprise(),
                           p.sadness(), p.disgust(), p.anger(), p.anticipation()};
  const absl::Status valid = ValidateEmotion(v);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", valid.message()));
  return v;
}

void EmotionToProto(const EmotionVector& v, v1::EmotionVector* p) {
  p->set_joy(v[0]);
  p->set_acceptance(v[1]);
  p->set_fear(v[2]);
  p->set_surprise(v[3]);
  p->set_sadness(v[4]);
  p->set_disgust(v[5]);
  p->set_anger(v[6]);
  p->set_anticipation(v[7]);
}

// ---- sessions and chat ----

v1::Role RoleToProto(const std::string& role) {
  if (role == "system") return v1::ROLE_SYSTEM;
  if (role == "user") return v1::ROLE_USER;
  if (role == "assistant") return v1::ROLE_ASSISTANT;
  return v1::ROLE_UNSPECIFIED;
}

const char* RoleFromProto(v1::Role role) {
  switch (role) {
    case v1::ROLE_SYSTEM:
      return "system";
    case v1::ROLE_USER:
      return "user";
    case v1::ROLE_ASSISTANT:
      return "assistant";
    default:
      return nullptr;
  }
}

Character CharacterFromProto(const v1::Character& proto) {
  return Character{proto.name(), proto.system_prompt()};
}

void SessionToProto(const Session& session, v1::Session* proto) {
  proto->set_session_id(session.id);
  proto->mutable_character()->set_name(session.character.name);
  proto->mutable_character()->set_system_prompt(session.character.system_prompt);
  for (const ChatMessage& message : session.history) {
    v1::ChatMessage* out = proto->add_history();
    out->set_role(RoleToProto(message.role));
    out->set_content(message.content);
  }
  proto->set_create_time_unix_micros(absl::ToUnixMicros(session.create_time));
  if (!session.character_id.empty()) {
    proto->set_character_id(session.character_id);
    SessionSetupToProto(session.setup, proto->mutable_setup());
    EmotionToProto(session.mood, proto->mutable_mood());
  }
}

absl::StatusOr<SessionSetup> SessionSetupFromProto(const v1::SessionSetup& p, bool has_setup) {
  SessionSetup s;
  if (!has_setup) return s;
  TROUPE_RETURN_IF_ERROR(CheckText(p.user_name(), "setup.user_name", kMaxNameBytes));
  TROUPE_RETURN_IF_ERROR(CheckText(p.user_persona(), "setup.user_persona", kMaxSetupTextBytes));
  TROUPE_RETURN_IF_ERROR(CheckText(p.scenario(), "setup.scenario", kMaxSetupTextBytes));
  TROUPE_RETURN_IF_ERROR(CheckText(p.user_id(), "setup.user_id", kMaxNameBytes));
  if (!p.user_name().empty()) s.user_name = p.user_name();
  s.user_persona = p.user_persona();
  s.scenario = p.scenario();
  s.point_in_time = StoryTimeFromProto(p.has_point_in_time(), p.point_in_time());
  if (p.has_initial_mood()) {
    TROUPE_ASSIGN_OR_RETURN(s.initial_mood, EmotionFromProto(p.initial_mood(), "setup.initial_mood"));
  }
  if (p.greeting_index() < -1) {
    return absl::InvalidArgumentError(absl::StrCat("setup.greeting_index: ", p.greeting_index(),
                                                   "; use -1 (none), 0 (first message) or i > 0"));
  }
  s.greeting_index = p.greeting_index();
  s.user_id = p.user_id();
  return s;
}

void SessionSetupToProto(const SessionSetup& s, v1::SessionSetup* p) {
  p->set_user_name(s.user_name);
  p->set_user_persona(s.user_persona);
  p->set_scenario(s.scenario);
  if (s.point_in_time) StoryTimeToProto(*s.point_in_time, p->mutable_point_in_time());
  EmotionToProto(s.initial_mood, p->mutable_initial_mood());
  p->set_greeting_index(s.greeting_index);
  p->set_user_id(s.user_id);
}

absl::StatusOr<TurnMemoryOptions> MemoryOptionsFromProto(const v1::MemoryOptions& p) {
  TurnMemoryOptions m;
  switch (p.strategy()) {
    case v1::RETRIEVAL_STRATEGY_UNSPECIFIED:
      break;  // RetrievalOptions' default: weighted (1, 0.15, 0, 0), docs/memory.md
    case v1::RETRIEVAL_STRATEGY_COMBINED_ADDITIVE:
      m.retrieval.strategy = RetrievalStrategy::kCombinedAdditive;
      break;
    case v1::RETRIEVAL_STRATEGY_SEMANTIC:
      m.retrieval.strategy = RetrievalStrategy::kSemantic;
      break;
    case v1::RETRIEVAL_STRATEGY_COMBINED_MULTIPLICATIVE:
      m.retrieval.strategy = RetrievalStrategy::kCombinedMultiplicative;
      break;
    case v1::RETRIEVAL_STRATEGY_SEMANTIC_FIRST:
      m.retrieval.strategy = RetrievalStrategy::kSemanticFirst;
      break;
    case v1::RETRIEVAL_STRATEGY_EMOTION_FIRST:
      m.retrieval.strategy = RetrievalStrategy::kEmotionFirst;
      break;
    case v1::RETRIEVAL_STRATEGY_WEIGHTED:
      m.retrieval.strategy = RetrievalStrategy::kWeighted;
      break;
    case v1::RETRIEVAL_STRATEGY_NONE:
      m.enabled = false;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("memory.strategy: unknown value ", p.strategy()));
  }
  if (p.top_k() < 0 || p.top_k() > 50) {
    return absl::InvalidArgumentError(absl::StrCat("memory.top_k: ", p.top_k(), "; allowed 0 (default 10) to 50"));
  }
  if (p.top_k() > 0) m.retrieval.k = p.top_k();
  m.retrieval.pool = std::max(m.retrieval.pool, m.retrieval.k);
  switch (p.query_emotion_source()) {
    case v1::QUERY_EMOTION_UNSPECIFIED:
    case v1::QUERY_EMOTION_SESSION_MOOD:
      m.emotion_source = QueryEmotionSource::kSessionMood;
      break;
    case v1::QUERY_EMOTION_MESSAGE:
      m.emotion_source = QueryEmotionSource::kMessage;
      break;
    case v1::QUERY_EMOTION_EXPLICIT: {
      m.emotion_source = QueryEmotionSource::kExplicit;
      if (!p.has_query_emotion()) {
        return absl::InvalidArgumentError("memory.query_emotion: required with QUERY_EMOTION_EXPLICIT");
      }
      absl::StatusOr<EmotionVector> v = EmotionFromProto(p.query_emotion(), "memory.query_emotion");
      if (!v.ok()) return v.status();
      m.query_emotion = *v;
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("memory.query_emotion_source: unknown value ", p.query_emotion_source()));
  }
  return m;
}

const char* ScopeName(MemoryScope scope) {
  switch (scope) {
    case MemoryScope::kSession:
      return "session";
    case MemoryScope::kUserCharacter:
      return "user_character";
    case MemoryScope::kCharacter:
      return "character";
  }
  return "";
}

void TurnRefsToProto(const std::vector<RecalledUnit>& memories, const std::vector<ActivatedLore>& lore,
                     const CharacterProfile& profile, v1::ChatResponse* response) {
  for (const RecalledUnit& m : memories) {
    v1::MemoryRef* ref = response->add_memories();
    ref->set_memory_id(m.id);
    ref->set_scope(ScopeName(m.scope));
    ref->set_text(m.text);
  }
  for (const ActivatedLore& l : lore) {
    v1::LoreRef* ref = response->add_lore();
    ref->set_entry_index(static_cast<int32_t>(l.entry_index));
    if (profile.lorebook && l.entry_index < profile.lorebook->entries.size()) {
      ref->set_name(profile.lorebook->entries[l.entry_index].name);
    }
  }
}

}  // namespace troupe
