// Streams one engine request to a gRPC client: the reactor is both the gRPC ServerWriteReactor
// and the engine's TokenSink for that request. See docs/threading.md, "gRPC side".
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/request/request.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "server/auth/key_limiter.h"
#include "server/metrics.h"
#include "server/work_queue.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// Response is v1::GenerateResponse or v1::ChatResponse (same field layout).
//
// Lifetime: Create returns a shared_ptr and the reactor keeps one reference to itself (self_)
// until gRPC calls OnDone; the engine holds another through Request::sink. Whoever calls Submit
// or FinishWithError must hold a shared_ptr for the duration of the call.
//
// Thread-safety: Push and Finish run on the engine thread; OnWriteDone, OnCancel and OnDone on
// gRPC threads; Submit/FinishWithError on a preparation worker. The decisions are made under
// mu_ and the gRPC calls (StartWrite, Finish) after releasing it; at most one write is in
// flight, tokens arriving meanwhile are merged into one pending message, and the gRPC Finish is
// called exactly once. Nothing here blocks.
template <typename Response>
class GenerateReactor final : public grpc::ServerWriteReactor<Response>, public TokenSink {
 public:
  // Runs when the request finished OK and the client is still there, with the whole generated
  // text (stripped of surrounding whitespace), the generated token ids as streamed (an EOS /
  // end-of-turn token is not among them) and why generation stopped. A non-OK result becomes
  // the RPC's status (no final message). It runs before the final message is sent, so what it
  // commits (a chat turn) is durable once the client sees the end of the stream.
  using OnSuccess = std::function<absl::Status(std::string reply_text, std::vector<TokenId> reply_tokens,
                                               FinishReason reason)>;
  // Adds fields to the final message (chat: the memories and lore the turn used).
  using OnFinal = std::function<void(Response& final_message)>;

  // REQUIRES: `engine` and `metrics` (nullable) outlive the RPC. `lease` (nullable: no key
  // limits) is the caller's hold on its key's limits (Caller::lease): the request's prompt
  // tokens are charged to it when the engine accepts the request, its completion tokens when
  // the engine finishes it, and its stream slot is given back just before the RPC's status is
  // sent, however the RPC ends.
  static std::shared_ptr<GenerateReactor> Create(Engine& engine, Metrics* metrics,
                                                 std::shared_ptr<CallLease> lease);

  GenerateReactor(const GenerateReactor&) = delete;
  GenerateReactor& operator=(const GenerateReactor&) = delete;

  // REQUIRES: called before Submit. on_success runs on a worker of `queue`, never on the engine
  // thread (it may block: a database commit). If the queue refuses the job (full:
  // kResourceExhausted; shutting down: kUnavailable), the RPC ends with that status and
  // on_success does not run. `queue` must outlive the RPC.
  void set_on_success(OnSuccess on_success, WorkQueue& queue) {
    on_success_ = std::move(on_success);
    on_success_queue_ = &queue;
  }
  // REQUIRES: called before Submit.
  void set_on_final(OnFinal on_final) { on_final_ = std::move(on_final); }

  // Gives the request an id and this sink and submits it. If the client has already gone, the
  // RPC ends CANCELLED without submitting; if Submit fails, it ends with Submit's error.
  // REQUIRES: called at most once, and never after FinishWithError.
  void Submit(Request request) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the RPC with `status` (not OK) before anything was submitted. Idempotent.
  void FinishWithError(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // True once the client cancelled, its deadline passed or a write failed.
  bool IsCancelled() const ABSL_LOCKS_EXCLUDED(mu_);

  // ---- TokenSink (engine thread) ----
  bool Push(TokenDelta delta) override ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(const absl::Status& status, const Completion& completion) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // ---- gRPC reactions ----
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override;

 private:
  using Base = grpc::ServerWriteReactor<Response>;

  // What to do with gRPC once mu_ is released.
  enum class Action { kNone, kWrite, kWriteAndFinish, kFinish };

  GenerateReactor(Engine& engine, Metrics* metrics, std::shared_ptr<CallLease> lease)
      : engine_(engine), metrics_(metrics), lease_(std::move(lease)) {}

  // Finish after on_success_ (if any) ran: sends the final message or ends with the error.
  void Complete(absl::Status outcome, const Completion& completion) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves pending_ into current_ and picks the write action. REQUIRES: pending_ has a value.
  Action TakePendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Action action, const grpc::Status& status);

  // Constant after construction.
  Engine& engine_;
  Metrics* const metrics_;  // may be null
  const std::shared_ptr<CallLease> lease_;  // may be null; thread-safe itself
  // Set before Submit, read on the engine thread after it.
  OnSuccess on_success_;
  WorkQueue* on_success_queue_ = nullptr;  // set with on_success_
  OnFinal on_final_;

  // Owned by this reactor until OnDone (see the class comment).
  std::shared_ptr<GenerateReactor> self_;

  // Engine thread only (Push and Finish).
  std::string reply_text_;  // accumulated only when on_success_ is set
  std::vector<TokenId> reply_tokens_;  // likewise
  std::optional<absl::Time> last_push_time_;

  // The message of the write in flight; touched only by whoever set write_in_flight_.
  Response current_;

  mutable absl::Mutex mu_;
  RequestId id_ ABSL_GUARDED_BY(mu_) = 0;
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;        // engine accepted the request
  bool engine_finished_ ABSL_GUARDED_BY(mu_) = false;  // TokenSink::Finish ran
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;        // client gone
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool rpc_finished_ ABSL_GUARDED_BY(mu_) = false;     // gRPC Finish was (being) called
  std::optional<Response> pending_ ABSL_GUARDED_BY(mu_);  // tokens waiting for the write
  bool pending_is_final_ ABSL_GUARDED_BY(mu_) = false;    // pending_ carries finish + usage
  std::optional<grpc::Status> deferred_status_ ABSL_GUARDED_BY(mu_);  // error to finish with
};

using GenerateStreamReactor = GenerateReactor<v1::GenerateResponse>;
using ChatStreamReactor = GenerateReactor<v1::ChatResponse>;
extern template class GenerateReactor<v1::GenerateResponse>;
extern template class GenerateReactor<v1::ChatResponse>;

}  // namespace troupe
