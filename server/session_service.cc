#include "server/session_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/log.h"
#include "engine/character/character_card.h"
#include "engine/sampler/sampling_params.h"
#include "engine/session/turn_planner.h"
#include "server/proto_convert.h"
#include "server/rpc_util.h"

namespace troupe {

// Everything a Chat job needs, copied out of the request in the reaction.
struct SessionService::ChatJob {
  Request request;  // sampling, priority, cache_salt and arrival_time set; prompt filled later
  std::string tenant;  // the caller's: the session must be this tenant's
  SessionId session_id;
  std::string message;
  TurnMemoryOptions memory;
  std::optional<EmotionVector> turn_emotion;
};

SessionService::SessionService(Engine& engine, SessionStore& sessions, WorkQueue& prepare_queue,
                               Metrics* metrics, RolePlayDeps roleplay)
    : engine_(engine),
      sessions_(sessions),
      prepare_queue_(prepare_queue),
      metrics_(metrics),
      roleplay_(std::move(roleplay)) {
  TROUPE_CHECK(roleplay_.commit_queue != nullptr);
}

grpc::ServerWriteReactor<v1::ChatResponse>* SessionService::Chat(grpc::CallbackServerContext* /*context*/,
                                                                const Caller& caller,
                                                                const v1::ChatRequest* request) {
  std::shared_ptr<ChatStreamReactor> reactor = ChatStreamReactor::Create(engine_, metrics_, caller.lease);
  absl::Status valid = request->session_id().empty()
                           ? absl::InvalidArgumentError("session_id is empty")
                           : ValidateText(request->message(), "message");
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(request->sampling(), roleplay_.chat_sampling);
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
  auto job = std::make_shared<ChatJob>();
  job->request.sampling = *std::move(sampling);
  job->request.priority = caller.ClampPriority(request->priority());
  job->request.cache_salt = CacheSaltFor(caller, request->cache_salt());
  job->request.arrival_time = absl::Now();
  job->tenant = caller.tenant;
  job->session_id = request->session_id();
  job->message = request->message();
  job->memory = *std::move(memory);
  job->turn_emotion = turn_emotion;
  const absl::Status scheduled = prepare_queue_.Schedule([this, reactor, job] { PrepareTurn(reactor, *job); });
  if (!scheduled.ok()) reactor->FinishWithError(scheduled);
  return reactor.get();
}

void SessionService::PrepareTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job) {
  if (reactor->IsCancelled()) {
    reactor->Submit(std::move(job.request));  // ends the RPC as CANCELLED
    return;
  }
  absl::StatusOr<Session> session = sessions_.Get(job.tenant, job.session_id);
  if (!session.ok()) {
    reactor->FinishWithError(session.status());
    return;
  }
  if (session->character_id.empty()) {
    PrepareInlineTurn(reactor, job, *session);
  } else {
    PrepareCharacterTurn(reactor, job, *session);
  }
}

void SessionService::PrepareInlineTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job,
                                       const Session& session) {
  Request& req = job.request;
  const TurnPlan plan = PlanInlineTurn(engine_.tokenizer(), engine_.model_info().chat_family, session,
                                       job.message, FoldMarksFor(req.sampling.max_tokens));
  req.prompt = plan.prompt;
  AddStopStrings(plan.stop, req.sampling);
  CommitWhenDone(*reactor, PendingTurnFor(session, job.message, plan));
  reactor->set_on_final([prompt_plan = ReportPlan(plan)](v1::ChatResponse& final_message) {
    *final_message.mutable_prompt_plan() = prompt_plan;
  });
  reactor->Submit(std::move(req));
}

void SessionService::StartPrefold(const Session& session, const std::string& character_name, int priority,
                                  PrefoldJob job) {
  if (roleplay_.summary_queue == nullptr || roleplay_.summarizer == nullptr) return;
  if (!sessions_.ClaimPendingSummary(session.id, job.from_turn, job.to_turn)) return;
  const absl::Status scheduled = roleplay_.summary_queue->Schedule(
      [&sessions = sessions_, summarizer = roleplay_.summarizer, id = session.id, user = session.setup.user_name,
       character_name, priority, job = std::move(job)] {
        absl::StatusOr<std::string> summary = summarizer->Summarize(job.summary, job.turns, character_name, user, priority);
        if (!summary.ok()) TROUPE_LOG_WARNING("background summary: %s", summary.status().ToString().c_str());
        sessions.SetPendingSummary(id, job.from_turn, summary.ok() ? std::optional<std::string>(*std::move(summary))
                                                                   : std::nullopt);
      });
  if (!scheduled.ok()) sessions_.SetPendingSummary(session.id, job.from_turn, std::nullopt);  // the fold makes it
}

FoldMarks SessionService::FoldMarksFor(int max_tokens) const {
  const ConversationOptions& conversation = roleplay_.conversation;
  return troupe::FoldMarksFor(std::max(1, engine_.model_info().max_model_len - max_tokens), conversation.fold_high,
                              conversation.fold_low);
}

v1::PromptPlan SessionService::ReportPlan(const TurnPlan& plan) const {
  if (metrics_ != nullptr) metrics_->ObserveTurnPlan(plan.folded_turns, plan.summary_time, plan.context_tokens, plan.recall_time);
  v1::PromptPlan out;
  out.set_rendered_in_full(plan.rendered_in_full);
  out.set_folded_turns(plan.folded_turns);
  out.set_context_tokens(plan.context_tokens);
  return out;
}

void SessionService::PrepareCharacterTurn(const std::shared_ptr<ChatStreamReactor>& reactor, ChatJob& job,
                                          const Session& session) {
  if (roleplay_.characters == nullptr) {
    reactor->FinishWithError(NoDataDirectory());
    return;
  }
  absl::StatusOr<std::shared_ptr<const StoredCharacter>> character =
      roleplay_.characters->Get(session.tenant, session.character_id);
  if (!character.ok()) {
    reactor->FinishWithError(character.status());
    return;
  }
  Request& req = job.request;
  TurnPlannerDeps deps;
  deps.tokenizer = &engine_.tokenizer();
  deps.family = engine_.model_info().chat_family;
  deps.fold = FoldMarksFor(req.sampling.max_tokens);
  deps.context_budget_tokens = roleplay_.conversation.ContextBudget(engine_.model_info().max_model_len);
  if (roleplay_.summarizer != nullptr) deps.summary_tokens = roleplay_.summarizer->options().max_tokens;
  deps.memory = roleplay_.memory;
  deps.rater = roleplay_.rater;
  deps.prompt_options = roleplay_.prompt_options;
  deps.lore_options.scan_budget = roleplay_.lore_scan_budget;
  if (roleplay_.summarizer != nullptr) {
    deps.summarize = [summarizer = roleplay_.summarizer, character_name = MacroCharName((*character)->profile),
                      user_name = session.setup.user_name, priority = req.priority](
                         const std::string& summary, const std::vector<ChatMessage>& turns) {
      return summarizer->Summarize(summary, turns, character_name, user_name, priority);
    };
  }
  absl::StatusOr<TurnPlan> plan = PlanTurn(deps, session, **character, job.message, job.memory);
  if (!plan.ok()) {
    reactor->FinishWithError(plan.status());
    return;
  }
  req.prompt = plan->prompt;
  AddStopStrings(plan->stop, req.sampling);
  if (plan->prefold) StartPrefold(session, MacroCharName((*character)->profile), req.priority, *std::move(plan->prefold));

  PendingTurn pending = PendingTurnFor(session, job.message, *plan);
  pending.remember = TurnMemoryFor(session, **character, job.message, job.turn_emotion);
  CommitWhenDone(*reactor, std::move(pending));
  reactor->set_on_final([memories = std::move(plan->memories), lore = std::move(plan->lore),
                         lore_skipped = plan->lore_entries_skipped, prompt_plan = ReportPlan(*plan),
                         character = *character](v1::ChatResponse& final_message) {
    TurnRefsToProto(memories, lore, character->profile, &final_message);
    final_message.set_lore_entries_skipped(lore_skipped);
    *final_message.mutable_prompt_plan() = prompt_plan;
  });
  reactor->Submit(std::move(req));
}

void SessionService::CommitWhenDone(ChatStreamReactor& reactor, PendingTurn turn) {
  reactor.set_on_success(
      [&sessions = sessions_, memory = roleplay_.memory, turn = std::move(turn)](
          std::string reply, std::vector<TokenId> reply_tokens, FinishReason reason) mutable {
        return CommitTurn(sessions, memory, std::move(turn), std::move(reply), std::move(reply_tokens), reason);
      },
      *roleplay_.commit_queue);
}

grpc::ServerUnaryReactor* SessionService::CreateSession(grpc::CallbackServerContext* context,
                                                        const Caller& caller,
                                                        const v1::CreateSessionRequest* request,
                                                        v1::Session* response) {
  if (request->character_id().empty()) {
    if (request->has_setup()) {
      return FinishUnary(context, absl::InvalidArgumentError(
                                      "setup needs a stored character: set character_id"));
    }
    absl::StatusOr<Session> session = sessions_.Create(caller.tenant, CharacterFromProto(request->character()));
    if (session.ok()) SessionToProto(*session, response);
    return FinishUnary(context, session.status());
  }
  if (request->has_character()) {
    return FinishUnary(context, absl::InvalidArgumentError("set character or character_id, not both"));
  }
  absl::StatusOr<SessionSetup> setup = SessionSetupFromProto(request->setup(), request->has_setup());
  if (!setup.ok()) return FinishUnary(context, setup.status());
  // The handlers run after this returns: they capture the tenant by value, never `caller`.
  return RunUnary(context, prepare_queue_, [this, request, response, setup = *std::move(setup),
                                            tenant = caller.tenant] {
    if (roleplay_.characters == nullptr) return NoDataDirectory();
    absl::StatusOr<std::shared_ptr<const StoredCharacter>> character =
        roleplay_.characters->Get(tenant, request->character_id());
    if (!character.ok()) return character.status();
    const CharacterProfile& profile = (*character)->profile;
    if (setup.greeting_index > static_cast<int>(profile.alternate_greetings.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setup.greeting_index: ", setup.greeting_index, ", but the character has ",
          profile.alternate_greetings.size(), " alternate greetings"));
    }
    absl::StatusOr<Session> session = sessions_.CreateDurable(
        tenant, (*character)->id, MacroCharName(profile), setup, GreetingFor(profile, setup));
    if (!session.ok()) return session.status();
    SessionToProto(*session, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SessionService::GetSession(grpc::CallbackServerContext* context,
                                                     const Caller& caller,
                                                     const v1::GetSessionRequest* request,
                                                     v1::Session* response) {
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    absl::StatusOr<Session> session = sessions_.Get(tenant, request->session_id());
    if (session.ok()) SessionToProto(*session, response);
    return session.status();
  });
}

grpc::ServerUnaryReactor* SessionService::ListSessions(grpc::CallbackServerContext* context,
                                                       const Caller& caller,
                                                       const v1::ListSessionsRequest* request,
                                                       v1::ListSessionsResponse* response) {
  if (absl::Status valid = ValidatePageSize(request->page_size()); !valid.ok()) return FinishUnary(context, valid);
  return RunUnary(context, prepare_queue_, [this, request, response, tenant = caller.tenant] {
    const int limit = PageLimit(request->page_size());
    absl::StatusOr<std::vector<Session>> sessions =
        sessions_.ListDurable(tenant, request->character_id(), request->page_token(), limit);
    if (!sessions.ok()) return sessions.status();
    for (const Session& s : *sessions) SessionToProto(s, response->add_sessions());
    if (static_cast<int>(sessions->size()) == limit) response->set_next_page_token(sessions->back().id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SessionService::DeleteSession(grpc::CallbackServerContext* context,
                                                        const Caller& caller,
                                                        const v1::DeleteSessionRequest* request,
                                                        v1::DeleteSessionResponse* /*response*/) {
  return RunUnary(context, prepare_queue_,
                  [this, request, tenant = caller.tenant] { return sessions_.Delete(tenant, request->session_id()); });
}

}  // namespace troupe
