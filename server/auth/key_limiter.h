// Per-key limits at run time: the rpm and tpm token buckets and the count of open streams of
// one line of the keys file, and the lease an admitted RPC holds on them. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth/key_file.h"
#include "server/auth/token_bucket.h"

namespace troupe {

enum class CallKind {
  kUnary,   // counts against rpm
  kStream,  // Generate, Chat: rpm, tpm credit and a max_streams slot
};

// Why a call was refused: `reason` is the metric label ("rpm", "tpm", "max_streams") and
// `retry_after` the time until the key allows the call (a hint for max_streams).
struct Refusal {
  std::string reason;
  absl::Duration retry_after;
};

// The live limits of one key. Thread-safe: every method locks mu_; nothing is called out
// under it. Shared (shared_ptr) by the key table that holds it and the leases of its RPCs, so
// a reload that drops the key leaves the leases of running RPCs valid.
class KeyLimiter {
 public:
  explicit KeyLimiter(const KeyLimits& limits);

  // Checks the limits in this order: max_streams (streams only), tpm credit (streams only),
  // rpm; on success takes an rpm token and (streams) a stream slot. Returns nullopt when
  // admitted, else why not (nothing was taken).
  std::optional<Refusal> TryAdmit(CallKind kind) ABSL_LOCKS_EXCLUDED(mu_);

  // Charges `tokens` (>= 0) to the tpm bucket, if any; the level may go below zero.
  void ChargeTokens(int64_t tokens) ABSL_LOCKS_EXCLUDED(mu_);

  // Gives back a stream slot taken by TryAdmit(kStream).
  void ReleaseStream() ABSL_LOCKS_EXCLUDED(mu_);

  // Applies a reloaded line's limits; open streams and bucket levels are kept.
  void SetLimits(const KeyLimits& limits) ABSL_LOCKS_EXCLUDED(mu_);

  int open_streams() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  KeyLimits limits_ ABSL_GUARDED_BY(mu_);
  std::optional<TokenBucket> rpm_ ABSL_GUARDED_BY(mu_);
  std::optional<TokenBucket> tpm_ ABSL_GUARDED_BY(mu_);
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

// One admitted RPC's hold on its key's limiter: charges its tokens and, for a stream, gives
// back the stream slot exactly once, on End() or destruction, whichever comes first.
// Thread-safe (ChargeTokens and End may race).
class CallLease {
 public:
  CallLease(std::shared_ptr<KeyLimiter> limiter, CallKind kind)
      : limiter_(std::move(limiter)), kind_(kind) {}
  ~CallLease() { End(); }
  CallLease(const CallLease&) = delete;
  CallLease& operator=(const CallLease&) = delete;

  // Prompt tokens when the request is admitted, completion tokens when it ends.
  void ChargeTokens(int64_t tokens) { limiter_->ChargeTokens(tokens); }

  // The RPC is over: releases the stream slot (once; later calls do nothing).
  void End() {
    if (kind_ == CallKind::kStream && !ended_.exchange(true)) limiter_->ReleaseStream();
  }

 private:
  const std::shared_ptr<KeyLimiter> limiter_;
  const CallKind kind_;
  std::atomic<bool> ended_{false};
};

// Admits one call of `kind` against `limiter`: a lease on success; kResourceExhausted (message
// naming the limit, never the key) with *refusal filled otherwise.
// REQUIRES: limiter is non-null.
[[nodiscard]] absl::StatusOr<std::shared_ptr<CallLease>> AdmitCall(
    const std::shared_ptr<KeyLimiter>& limiter, CallKind kind, Refusal* refusal);

}  // namespace troupe
