#include "server/chat_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "engine/character/card_png.h"
#include "engine/character/character_card.h"
#include "engine/session/prompt_builder.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/character_convert.h"
#include "server/generate_reactor.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace troupe {
namespace {

// Checks a client-supplied text field: non-empty and valid UTF-8.
absl::Status ValidateText(const std::string& text, const char* field) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

// Everything a Generate job needs, copied out of the request in the reaction.
struct GenerateJob {
  std::string prompt;
  std::vector<TokenId> prompt_token_ids;
  bool add_special_tokens = true;
  bool parse_special = true;
  Request request;  // sampling, priority and arrival_time set; prompt filled later
};

absl::StatusOr<GenerateJob> ValidateGenerate(const v1::GenerateRequest& proto) {
  const bool has_text = !proto.prompt().empty();
  const bool has_ids = proto.prompt_token_ids_size() > 0;
  if (!has_text && !has_ids) {
    return absl::InvalidArgumentError("prompt is empty (set prompt or prompt_token_ids)");
  }
  if (has_text && has_ids) {
    return absl::InvalidArgumentError("set either prompt or prompt_token_ids, not both");
  }
  if (has_text) {
    if (absl::Status status = ValidateText(proto.prompt(), "prompt"); !status.ok()) return status;
  }
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(proto.sampling());
  if (!sampling.ok()) return sampling.status();

  GenerateJob job;
  job.prompt = proto.prompt();
  job.prompt_token_ids.assign(proto.prompt_token_ids().begin(), proto.prompt_token_ids().end());
  job.add_special_tokens = !proto.has_add_special_tokens() || proto.add_special_tokens();
  job.parse_special = !proto.has_parse_special() || proto.parse_special();
  job.request.sampling = *std::move(sampling);
  job.request.priority = proto.priority();
  job.request.arrival_time = absl::Now();  // TTFT includes tokenization, as in vLLM
  return job;
}

// The prefix-cache salt of a call: its tenant (the x-api-key metadata, else authorization) and
// the request's own salt, joined so that no two different pairs give the same string.
std::string CacheSaltFor(const grpc::CallbackServerContext& context, const std::string& request_salt) {
  std::string tenant;
  for (const char* key : {"x-api-key", "authorization"}) {
    auto it = context.client_metadata().find(key);
    if (it != context.client_metadata().end()) {
      tenant.assign(it->second.data(), it->second.size());
      break;
    }
  }
  if (tenant.empty() && request_salt.empty()) return "";
  return absl::StrCat(tenant.size(), ":", tenant, request_salt);
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Runs `work` on a preparation worker (it may touch the database) and finishes the unary RPC
// with its status.
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, WorkQueue& queue,
                                   std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Status scheduled =
      queue.Schedule([reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

absl::Status NoDataDirectory() {
  return absl::FailedPreconditionError(
      "this server keeps no characters: start it with --data-dir to enable stored characters");
}

constexpr size_t kMaxCardPngBytes = 16 << 20;
constexpr size_t kMaxChatMessageBytes = 64 << 10;  // one user message

// A 1x1 grey PNG that exported cards are embedded in.
constexpr unsigned char kBlankPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x68, 0x00, 0x00, 0x00,
    0x82, 0x00, 0x81, 0x77, 0xcd, 0x72, 0xb6, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82};

// The profile a create or update request carries, whichever form it came in.
template <typename Req>
absl::StatusOr<CharacterProfile> ProfileOf(const Req& request) {
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

absl::StatusOr<TurnMemoryOptions> MemoryOptionsFromProto(const v1::MemoryOptions& p) {
  TurnMemoryOptions m;
  switch (p.strategy()) {
    case v1::RETRIEVAL_STRATEGY_UNSPECIFIED:
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

}  // namespace

ChatService::ChatService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue,
                         Metrics* metrics, RolePlayDeps roleplay)
    : engine_(engine),
      sessions_(sessions),
      prepare_queue_(prepare_queue),
      metrics_(metrics),
      roleplay_(std::move(roleplay)) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* ChatService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  std::shared_ptr<GenerateStreamReactor> reactor = GenerateStreamReactor::Create(engine_, metrics_);
  absl::StatusOr<GenerateJob> job = ValidateGenerate(*request);
  if (!job.ok()) {
    reactor->FinishWithError(job.status());
    return reactor.get();
  }
  job->request.cache_salt = CacheSaltFor(*context, request->cache_salt());
  auto shared_job = std::make_shared<GenerateJob>(*std::move(job));
  Engine& engine = engine_;
  const absl::Status scheduled = prepare_queue_.Schedule([reactor, shared_job, &engine] {
    if (reactor->IsCancelled()) {  // Submit ends the RPC as CANCELLED without tokenizing
      reactor->Submit(std::move(shared_job->request));
      return;
    }
    Request& req = shared_job->request;
    if (shared_job->prompt_token_ids.empty()) {
      const Tokenizer& tokenizer = engine.tokenizer();
      req.prompt = tokenizer.Encode(shared_job->prompt,
                                    shared_job->add_special_tokens && tokenizer.add_bos(),
                                    shared_job->parse_special);
    } else {
      req.prompt = std::move(shared_job->prompt_token_ids);
    }
    reactor->Submit(std::move(req));
  });
  if (!scheduled.ok()) reactor->FinishWithError(scheduled);
  return reactor.get();
}

grpc::ServerWriteReactor<v1::ChatResponse>* ChatService::Chat(grpc::CallbackServerContext* context,
                                                             const v1::ChatRequest* request) {
  std::shared_ptr<ChatStreamReactor> reactor = ChatStreamReactor::Create(engine_, metrics_);
  absl::Status valid = request->session_id().empty()
                           ? absl::InvalidArgumentError("session_id is empty")
                           : ValidateText(request->message(), "message");
  if (valid.ok() && request->message().size() > kMaxChatMessageBytes) {
    valid = absl::InvalidArgumentError(absl::StrCat("message: ", request->message().size(),
                                                    " bytes; the limit is ", kMaxChatMessageBytes));
  }
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(request->sampling());
  if (valid.ok()) valid = sampling.status();
  absl::StatusOr<TurnMemoryOptions> memory = MemoryOptionsFromProto(request->memory());
  if (valid.ok()) valid = memory.status();
  std::optional<EmotionVector> turn_emotion;
  if (valid.ok() && request->memory().has_turn_emotion()) {
    absl::StatusOr<EmotionVector> v = EmotionFromProto(request->memory().turn_emotion(), "memory.turn_emotion");
    if (v.ok()) {
      turn_emotion = *v;
    } else {
      valid = v.status();
    }
  }
  if (!valid.ok()) {
    reactor->FinishWithError(valid);
    return reactor.get();
  }
  Request base;
  base.sampling = *std::move(sampling);
  base.priority = request->priority();
  base.cache_salt = CacheSaltFor(*context, request->cache_salt());
  base.arrival_time = absl::Now();
  auto shared_request = std::make_shared<Request>(std::move(base));
  Engine& engine = engine_;
  SessionStore& sessions = sessions_;
  const absl::Status scheduled = prepare_queue_.Schedule(
      [this, reactor, shared_request, &engine, &sessions, session_id = request->session_id(),
       message = request->message(), memory = *std::move(memory), turn_emotion] {
        Request& req = *shared_request;
        if (reactor->IsCancelled()) {
          reactor->Submit(std::move(req));  // ends the RPC as CANCELLED
          return;
        }
        absl::StatusOr<Session> session = sessions.Get(session_id);
        if (!session.ok()) {
          reactor->FinishWithError(session.status());
          return;
        }
        if (!session->character_id.empty()) {
          PrepareCharacterTurn(reactor, shared_request, *std::move(session), message, memory, turn_emotion);
          return;
        }
        const ChatFamily family = engine.model_info().chat_family;
        const Tokenizer& tokenizer = engine.tokenizer();
        const std::string continuation =
            session->context_tokens.empty() ? std::string()
                                            : BuildChatContinuation(family, session->character, message);
        if (!continuation.empty()) {
          // Token for token the previous turn's prompt and reply, then the new turn: the prefix
          // cache serves everything before the continuation.
          req.prompt = session->context_tokens;
          const std::vector<TokenId> tail = tokenizer.Encode(continuation, false, /*parse_special=*/true);
          req.prompt.insert(req.prompt.end(), tail.begin(), tail.end());
        } else {
          const ChatPrompt prompt = BuildChatPrompt(family, session->character, session->history, message);
          for (const std::string& stop : prompt.stop) req.sampling.stop.push_back(stop);
          req.prompt = tokenizer.Encode(prompt.text, tokenizer.add_bos(), /*parse_special=*/true);
        }
        // Appended only if the turn finishes OK; see SessionStore::AppendTurn for conflicts. A
        // reply that ended at end of turn or max_tokens leaves its tokens as the next turn's
        // context (after a stop string the tokens hold text the reply does not, so the next
        // turn renders the text history instead).
        reactor->set_on_success([&sessions, session_id, message, version = session->history.size(),
                                 prompt = req.prompt](std::string reply, std::vector<TokenId> reply_tokens,
                                                      FinishReason reason) {
          std::vector<TokenId> context;
          if (reason == FinishReason::kEos || reason == FinishReason::kLength) {
            context = prompt;
            context.insert(context.end(), reply_tokens.begin(), reply_tokens.end());
          }
          SessionStore::Turn turn;
          turn.user_message = message;
          turn.reply = std::move(reply);
          turn.context_tokens = std::move(context);
          return sessions.AppendTurn(session_id, version, std::move(turn));
        });
        reactor->Submit(std::move(req));
      });
  if (!scheduled.ok()) reactor->FinishWithError(scheduled);
  return reactor.get();
}

void ChatService::PrepareCharacterTurn(std::shared_ptr<ChatStreamReactor> reactor,
                                       std::shared_ptr<Request> request, Session session,
                                       std::string message, TurnMemoryOptions memory,
                                       std::optional<EmotionVector> turn_emotion) {
  if (roleplay_.characters == nullptr) {
    reactor->FinishWithError(NoDataDirectory());
    return;
  }
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> character =
      roleplay_.characters->Get(session.character_id);
  if (!character.ok()) {
    reactor->FinishWithError(character.status());
    return;
  }
  TurnPlannerDeps deps;
  deps.tokenizer = &engine_.tokenizer();
  deps.family = engine_.model_info().chat_family;
  const int max_tokens = request->sampling.max_tokens;
  deps.max_prompt_tokens = std::max(1, engine_.model_info().max_model_len - max_tokens);
  deps.memory = roleplay_.memory;
  deps.rater = roleplay_.rater;
  deps.prompt_options = roleplay_.prompt_options;
  if (roleplay_.summarizer != nullptr) {
    deps.summarize = [summarizer = roleplay_.summarizer, character_name = MacroCharName((*character)->profile),
                      user_name = session.setup.user_name, priority = request->priority](
                         const std::string& summary, const std::vector<ChatMessage>& turns) {
      return summarizer->Summarize(summary, turns, character_name, user_name, priority);
    };
  }
  absl::StatusOr<TurnPlan> plan = PlanTurn(deps, session, **character, message, memory);
  if (!plan.ok()) {
    reactor->FinishWithError(plan.status());
    return;
  }
  Request& req = *request;
  req.prompt = plan->prompt;
  for (const std::string& stop : plan->stop) req.sampling.stop.push_back(stop);

  SessionStore& sessions = sessions_;
  MemoryService* memory_service = roleplay_.memory;
  TurnMemoryInput remember;
  remember.keys = {.session_id = session.id, .character_id = session.character_id, .user_id = session.setup.user_id};
  remember.turn_index = session.num_turns;
  remember.user_text = message;
  remember.user_name = session.setup.user_name;
  remember.character_name = MacroCharName((*character)->profile);
  if (session.setup.point_in_time) remember.story_time = session.setup.point_in_time->ordinal;
  remember.emotion = turn_emotion;
  reactor->set_on_success(
      [&sessions, memory_service, session_id = session.id, version = session.history.size(),
       prompt = plan->prompt, context = plan->context, character_version = plan->character_version,
       new_summary = plan->new_summary, new_summarized_turns = plan->new_summarized_turns,
       remember = std::move(remember)](std::string reply, std::vector<TokenId> reply_tokens,
                                       FinishReason reason) mutable {
        if (new_summary) {
          const absl::Status summarized = sessions.SetSummary(session_id, *new_summary, new_summarized_turns);
          if (!summarized.ok()) return summarized;
        }
        SessionStore::Turn turn;
        turn.user_message = remember.user_text;
        turn.context = context;
        turn.reply = reply;
        if (reason == FinishReason::kEos || reason == FinishReason::kLength) {
          turn.context_tokens = std::move(prompt);
          turn.context_tokens.insert(turn.context_tokens.end(), reply_tokens.begin(), reply_tokens.end());
        }
        turn.character_version = character_version;
        const absl::Status appended = sessions.AppendTurn(session_id, version, std::move(turn));
        if (!appended.ok()) return appended;
        if (memory_service != nullptr) {
          remember.reply_text = std::move(reply);
          const absl::Status queued = memory_service->Remember(std::move(remember));
          // The turn is committed; a memory that could not be queued is rebuilt at the next start.
          if (!queued.ok()) TROUPE_LOG_WARNING("memory not queued: %s", queued.ToString().c_str());
        }
        return absl::OkStatus();
      },
      roleplay_.commit_queue);
  reactor->set_on_final([memories = plan->memories, lore = plan->lore,
                         profile = *character](v1::ChatResponse& final_message) {
    for (const RecalledUnit& m : memories) {
      v1::MemoryRef* ref = final_message.add_memories();
      ref->set_memory_id(m.id);
      ref->set_scope(ScopeName(m.scope));
      ref->set_text(m.text);
    }
    for (const ActivatedLore& l : lore) {
      v1::LoreRef* ref = final_message.add_lore();
      ref->set_entry_index(static_cast<int32_t>(l.entry_index));
      if (profile->profile.lorebook && l.entry_index < profile->profile.lorebook->entries.size()) {
        ref->set_name(profile->profile.lorebook->entries[l.entry_index].name);
      }
    }
  });
  reactor->Submit(std::move(req));
}

grpc::ServerUnaryReactor* ChatService::CreateSession(grpc::CallbackServerContext* context,
                                                     const v1::CreateSessionRequest* request,
                                                     v1::Session* response) {
  if (request->character_id().empty()) {
    if (request->has_setup()) {
      return FinishUnary(context, absl::InvalidArgumentError(
                                      "setup needs a stored character: set character_id"));
    }
    absl::StatusOr<Session> session = sessions_.Create(CharacterFromProto(request->character()));
    if (session.ok()) SessionToProto(*session, response);
    return FinishUnary(context, session.status());
  }
  if (request->has_character()) {
    return FinishUnary(context, absl::InvalidArgumentError("set character or character_id, not both"));
  }
  absl::StatusOr<SessionSetup> setup = SessionSetupFromProto(request->setup(), request->has_setup());
  if (!setup.ok()) return FinishUnary(context, setup.status());
  return RunUnary(context, prepare_queue_, [this, request, response, setup = *std::move(setup)] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> character =
        roleplay_.characters->Get(request->character_id());
    if (!character.ok()) return character.status();
    const CharacterProfile& profile = (*character)->profile;
    if (setup.greeting_index > static_cast<int>(profile.alternate_greetings.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setup.greeting_index: ", setup.greeting_index, ", but the character has ",
          profile.alternate_greetings.size(), " alternate greetings"));
    }
    absl::StatusOr<Session> session = sessions_.CreateDurable(
        (*character)->id, MacroCharName(profile), setup, GreetingFor(profile, setup));
    if (!session.ok()) return session.status();
    SessionToProto(*session, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ChatService::GetSession(grpc::CallbackServerContext* context,
                                                  const v1::GetSessionRequest* request,
                                                  v1::Session* response) {
  return RunUnary(context, prepare_queue_, [this, request, response] {
    absl::StatusOr<Session> session = sessions_.Get(request->session_id());
    if (session.ok()) SessionToProto(*session, response);
    return session.status();
  });
}

grpc::ServerUnaryReactor* ChatService::ListSessions(grpc::CallbackServerContext* context,
                                                    const v1::ListSessionsRequest* request,
                                                    v1::ListSessionsResponse* response) {
  if (request->page_size() < 0 || request->page_size() > 1000) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "page_size: ", request->page_size(), "; allowed 0 (default 100) to 1000")));
  }
  return RunUnary(context, prepare_queue_, [this, request, response] {
    const int limit = request->page_size() == 0 ? 100 : request->page_size();
    absl::StatusOr<std::vector<Session>> sessions =
        sessions_.ListDurable(request->character_id(), request->page_token(), limit);
    if (!sessions.ok()) return sessions.status();
    for (const Session& s : *sessions) SessionToProto(s, response->add_sessions());
    if (static_cast<int>(sessions->size()) == limit) response->set_next_page_token(sessions->back().id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ChatService::DeleteSession(grpc::CallbackServerContext* context,
                                                     const v1::DeleteSessionRequest* request,
                                                     v1::DeleteSessionResponse* /*response*/) {
  return RunUnary(context, prepare_queue_, [this, request] { return sessions_.Delete(request->session_id()); });
}

grpc::ServerUnaryReactor* ChatService::CreateCharacter(grpc::CallbackServerContext* context,
                                                       const v1::CreateCharacterRequest* request,
                                                       v1::StoredCharacter* response) {
  return RunUnary(context, prepare_queue_, [this, request, response] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<CharacterProfile> profile = ProfileOf(*request);
    if (!profile.ok()) return profile.status();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> created =
        roleplay_.characters->Create(*std::move(profile));
    if (!created.ok()) return created.status();
    StoredCharacterToProto(**created, response);
    IndexExperiences(*created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ChatService::GetCharacter(grpc::CallbackServerContext* context,
                                                    const v1::GetCharacterRequest* request,
                                                    v1::StoredCharacter* response) {
  return RunUnary(context, prepare_queue_, [this, request, response] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> c = roleplay_.characters->Get(request->character_id());
    if (c.ok()) StoredCharacterToProto(**c, response);
    return c.status();
  });
}

grpc::ServerUnaryReactor* ChatService::ListCharacters(grpc::CallbackServerContext* context,
                                                      const v1::ListCharactersRequest* request,
                                                      v1::ListCharactersResponse* response) {
  if (request->page_size() < 0 || request->page_size() > 1000) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "page_size: ", request->page_size(), "; allowed 0 (default 100) to 1000")));
  }
  return RunUnary(context, prepare_queue_, [this, request, response] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    const int limit = request->page_size() == 0 ? 100 : request->page_size();
    absl::StatusOr<std::vector<std::shared_ptr<const StoredCharacter>>> list =
        roleplay_.characters->List(request->page_token(), limit);
    if (!list.ok()) return list.status();
    for (const auto& c : *list) StoredCharacterToProto(*c, response->add_characters());
    if (static_cast<int>(list->size()) == limit) response->set_next_page_token(list->back()->id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ChatService::UpdateCharacter(grpc::CallbackServerContext* context,
                                                       const v1::UpdateCharacterRequest* request,
                                                       v1::StoredCharacter* response) {
  return RunUnary(context, prepare_queue_, [this, request, response] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<CharacterProfile> profile = ProfileOf(*request);
    if (!profile.ok()) return profile.status();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> updated =
        roleplay_.characters->Update(request->character_id(), *std::move(profile));
    if (!updated.ok()) return updated.status();
    StoredCharacterToProto(**updated, response);
    IndexExperiences(*updated);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ChatService::DeleteCharacter(grpc::CallbackServerContext* context,
                                                       const v1::DeleteCharacterRequest* request,
                                                       v1::DeleteCharacterResponse* /*response*/) {
  return RunUnary(context, prepare_queue_, [this, request] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    return roleplay_.characters->Delete(request->character_id());
  });
}

grpc::ServerUnaryReactor* ChatService::ExportCharacter(grpc::CallbackServerContext* context,
                                                       const v1::ExportCharacterRequest* request,
                                                       v1::ExportCharacterResponse* response) {
  return RunUnary(context, prepare_queue_, [this, request, response] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> c = roleplay_.characters->Get(request->character_id());
    if (!c.ok()) return c.status();
    const CharacterProfile& profile = (*c)->profile;
    const CardSpec spec = request->spec() == v1::CARD_SPEC_V2 ? CardSpec::kV2 : CardSpec::kV3;
    if (!request->png()) {
      response->set_card(ToCharacterCardJson(profile, spec));
      response->set_content_type("application/json");
      return absl::OkStatus();
    }
    CardPngText text;
    text.chara_json = ToCharacterCardJson(profile, CardSpec::kV2);
    if (spec == CardSpec::kV3) text.ccv3_json = ToCharacterCardJson(profile, CardSpec::kV3);
    absl::StatusOr<std::string> png = WriteCardToPng(
        std::string_view(reinterpret_cast<const char*>(kBlankPng), sizeof(kBlankPng)), text);
    if (!png.ok()) return png.status();
    response->set_card(*std::move(png));
    response->set_content_type("image/png");
    return absl::OkStatus();
  });
}

void ChatService::IndexExperiences(std::shared_ptr<const StoredCharacter> character) {
  if (roleplay_.memory == nullptr) return;
  std::vector<MemoryService::Experience> experiences;
  for (const Experience& e : character->profile.experiences) {
    experiences.push_back({.text = e.text,
                           .story_time = e.when ? std::optional<int64_t>(e.when->ordinal) : std::nullopt,
                           .emotion = e.emotion});
  }
  // Rating experiences goes through the engine: on the memory writer, off the RPC's path.
  const absl::Status queued = roleplay_.memory->QueueCharacterExperiences(character->id, std::move(experiences));
  if (!queued.ok()) TROUPE_LOG_WARNING("experiences not indexed: %s", queued.ToString().c_str());
}

grpc::ServerUnaryReactor* ChatService::GetServerInfo(grpc::CallbackServerContext* context,
                                                     const v1::GetServerInfoRequest* /*request*/,
                                                     v1::ServerInfo* response) {
  ModelInfoToProto(engine_.model_info(), response);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace troupe
