#include "server/generate_reactor.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace troupe {
namespace {

// Appends one engine delta to a response message (GenerateResponse or ChatResponse).
template <typename Response>
void AppendDelta(const TokenDelta& delta, Response& response) {
  for (TokenId id : delta.token_ids) response.add_token_ids(id);
  response.mutable_text()->append(delta.text);
  for (const SampleResult& sample : delta.logprobs) {
    v1::TokenLogprobs* out = response.add_logprobs();
    out->set_token_id(sample.id);
    out->set_logprob(sample.logprob);
    for (const TokenLogprob& top : sample.top) {
      v1::TokenLogprob* entry = out->add_top();
      entry->set_token_id(top.id);
      entry->set_logprob(top.logprob);
    }
  }
}

// Moves the tokens of `from` behind those of `into`.
template <typename Response>
void MergeInto(Response& into, Response&& from) {
  into.mutable_token_ids()->MergeFrom(from.token_ids());
  into.mutable_text()->append(from.text());
  into.mutable_logprobs()->MergeFrom(from.logprobs());
}

template <typename Response>
void SetFinal(const Completion& completion, Response& response) {
  response.set_finish_reason(FinishReasonToProto(completion.finish_reason));
  v1::Usage* usage = response.mutable_usage();
  usage->set_prompt_tokens(completion.usage.prompt_tokens);
  usage->set_cached_prompt_tokens(completion.usage.cached_prompt_tokens);
  usage->set_completion_tokens(completion.usage.completion_tokens);
  usage->set_restored_prompt_tokens(completion.usage.restored_prompt_tokens);
  v1::Timings* timings = response.mutable_timings();
  timings->set_queue_seconds(absl::ToDoubleSeconds(completion.queue_time));
  timings->set_time_to_first_token_seconds(absl::ToDoubleSeconds(completion.time_to_first_token));
  timings->set_e2e_seconds(absl::ToDoubleSeconds(completion.e2e_latency));
}

grpc::Status ClientGoneStatus() {
  return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the request");
}

}  // namespace

template <typename Response>
std::shared_ptr<GenerateReactor<Response>> GenerateReactor<Response>::Create(
    Engine& engine, Metrics* metrics, std::shared_ptr<CallLease> lease) {
  std::shared_ptr<GenerateReactor> reactor(new GenerateReactor(engine, metrics, std::move(lease)));
  reactor->self_ = reactor;
  return reactor;
}

template <typename Response>
void GenerateReactor<Response>::Submit(Request request) {
  const RequestId id = engine_.NewRequestId();
  request.id = id;
  bool cancelled_before = false;
  {
    absl::MutexLock lock(&mu_);
    if (rpc_finished_) return;
    cancelled_before = cancelled_;
    if (cancelled_before) {
      rpc_finished_ = true;
    } else {
      id_ = id;
    }
  }
  if (cancelled_before) {
    Perform(Action::kFinish, ClientGoneStatus());
    return;
  }
  request.sink = self_;  // valid: OnDone cannot run before this RPC finishes
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  const absl::Status submitted = engine_.Submit(std::move(request));
  if (!submitted.ok()) {  // the engine never calls the sink after a failed Submit
    FinishWithError(submitted);
    return;
  }
  if (lease_ != nullptr) lease_->ChargeTokens(prompt_tokens);
  bool cancel_now = false;
  {
    absl::MutexLock lock(&mu_);
    submitted_ = true;
    // A cancel that arrived while Submit ran found submitted_ false and could not forward it.
    cancel_now = cancelled_ && !engine_finished_;
  }
  if (cancel_now) engine_.Cancel(id);
}

template <typename Response>
void GenerateReactor<Response>::FinishWithError(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (rpc_finished_) return;
    rpc_finished_ = true;
  }
  Perform(Action::kFinish, status.ok() ? grpc::Status(grpc::StatusCode::INTERNAL,
                                                      "FinishWithError called with OK")
                                       : ToGrpcStatus(status));
}

template <typename Response>
bool GenerateReactor<Response>::IsCancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

template <typename Response>
bool GenerateReactor<Response>::Push(TokenDelta delta) {
  const absl::Time now = absl::Now();
  if (metrics_ != nullptr && last_push_time_.has_value()) {
    metrics_->ObserveInterTokenGap(now - *last_push_time_, static_cast<int>(delta.token_ids.size()));
  }
  last_push_time_ = now;
  if (on_success_) {
    reply_text_.append(delta.text);
    reply_tokens_.insert(reply_tokens_.end(), delta.token_ids.begin(), delta.token_ids.end());
  }

  Response chunk;
  AppendDelta(delta, chunk);
  Action action = Action::kNone;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || rpc_finished_) return false;
    if (pending_.has_value()) {
      MergeInto(*pending_, std::move(chunk));
    } else {
      pending_.emplace(std::move(chunk));
    }
    if (!write_in_flight_) action = TakePendingLocked();
  }
  Perform(action, grpc::Status::OK);
  return true;
}

template <typename Response>
void GenerateReactor<Response>::Finish(const absl::Status& status, const Completion& completion) {
  if (lease_ != nullptr) lease_->ChargeTokens(completion.usage.completion_tokens);
  absl::Status outcome = status;
  if (outcome.ok() && IsCancelled()) {
    outcome = absl::CancelledError("the client cancelled the request");
  }
  if (outcome.ok() && on_success_) {
    std::shared_ptr<GenerateReactor> self;
    {
      absl::MutexLock lock(&mu_);
      self = self_;  // alive until OnDone, which cannot come before Complete finishes the RPC
    }
    const absl::Status scheduled = on_success_queue_->Schedule([self, completion] {
      absl::Status result = self->on_success_(std::string(absl::StripAsciiWhitespace(self->reply_text_)),
                                              std::move(self->reply_tokens_), completion.finish_reason);
      self->Complete(std::move(result), completion);
    });
    if (scheduled.ok()) return;
    // Never on the engine thread: the reply is not committed, and the client hears why.
    outcome = absl::Status(scheduled.code(),
                           absl::StrCat("the reply finished but was not saved: ", scheduled.message()));
  }
  Complete(std::move(outcome), completion);
}

template <typename Response>
void GenerateReactor<Response>::Complete(absl::Status outcome, const Completion& completion) {
  if (outcome.ok() && metrics_ != nullptr) {
    metrics_->ObserveSuccess(completion.finish_reason, completion);
  }

  Action action = Action::kNone;
  grpc::Status final_status;
  {
    absl::MutexLock lock(&mu_);
    engine_finished_ = true;
    if (rpc_finished_) return;
    if (outcome.ok()) {
      if (!pending_.has_value()) pending_.emplace();
      SetFinal(completion, *pending_);
      if (on_final_) on_final_(*pending_);
      pending_is_final_ = true;
      if (!write_in_flight_) action = TakePendingLocked();
    } else {
      final_status = cancelled_ ? ClientGoneStatus() : ToGrpcStatus(outcome);
      pending_.reset();  // the stream ends with an error; undelivered tokens are dropped
      if (write_in_flight_) {
        deferred_status_ = final_status;  // OnWriteDone finishes
      } else {
        rpc_finished_ = true;
        action = Action::kFinish;
      }
    }
  }
  Perform(action, final_status);
}

template <typename Response>
void GenerateReactor<Response>::OnWriteDone(bool ok) {
  Action action = Action::kNone;
  grpc::Status final_status;
  bool cancel_engine = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) {  // the stream is broken: the client went away
      cancelled_ = true;
      pending_.reset();
      pending_is_final_ = false;
    }
    if (pending_.has_value()) {
      action = TakePendingLocked();
    } else if (engine_finished_ && !rpc_finished_) {
      // The engine finished while the write was in flight, with an error, or OK but the
      // final message was dropped above because the write failed.
      final_status = deferred_status_.value_or(ClientGoneStatus());
      rpc_finished_ = true;
      action = Action::kFinish;
    } else if (!ok && submitted_ && !engine_finished_) {
      cancel_engine = true;
      id = id_;
    }
  }
  if (cancel_engine) engine_.Cancel(id);  // the engine will Finish(kCancelled)
  Perform(action, final_status);
}

template <typename Response>
void GenerateReactor<Response>::OnCancel() {
  bool cancel_engine = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    cancel_engine = submitted_ && !engine_finished_;
    id = id_;
  }
  // Before submission, Submit sees cancelled_ and ends the RPC itself.
  if (cancel_engine) engine_.Cancel(id);
}

template <typename Response>
void GenerateReactor<Response>::OnDone() {
  // gRPC is done with this reactor; the engine may still hold the sink for a while.
  std::shared_ptr<GenerateReactor> self = std::move(self_);
}

template <typename Response>
typename GenerateReactor<Response>::Action GenerateReactor<Response>::TakePendingLocked() {
  current_ = std::move(*pending_);
  pending_.reset();
  write_in_flight_ = true;
  if (pending_is_final_) {
    rpc_finished_ = true;
    return Action::kWriteAndFinish;
  }
  return Action::kWrite;
}

template <typename Response>
void GenerateReactor<Response>::Perform(Action action, const grpc::Status& status) {
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      Base::StartWrite(&current_);
      return;
    case Action::kWriteAndFinish:
      // The stream slot is free before the client can see the end, so it may start the next.
      if (lease_ != nullptr) lease_->End();
      if (metrics_ != nullptr) metrics_->CountRequest(absl::StatusCode::kOk);
      Base::StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    case Action::kFinish:
      if (lease_ != nullptr) lease_->End();
      if (metrics_ != nullptr) metrics_->CountRequest(FromGrpcStatus(status).code());
      Base::Finish(status);
      return;
  }
}

template class GenerateReactor<v1::GenerateResponse>;
template class GenerateReactor<v1::ChatResponse>;

}  // namespace troupe
