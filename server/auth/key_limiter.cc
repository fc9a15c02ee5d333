#include "server/auth/key_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"

namespace troupe {
namespace {

// How long a client refused for max_streams is told to wait: streams end at unknown times, so
// this is only a pacing hint.
constexpr absl::Duration kStreamRetryHint = absl::Seconds(1);

}  // namespace

KeyLimiter::KeyLimiter(const KeyLimits& limits) { SetLimits(limits); }

void KeyLimiter::SetLimits(const KeyLimits& limits) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  limits_ = limits;
  auto update = [now](std::optional<TokenBucket>& bucket, const std::optional<int64_t>& rate) {
    if (!rate.has_value()) {
      bucket.reset();
    } else if (bucket.has_value()) {
      bucket->SetRate(*rate, now);
    } else {
      bucket.emplace(*rate, now);
    }
  };
  update(rpm_, limits.rpm);
  update(tpm_, limits.tpm);
}

std::optional<Refusal> KeyLimiter::TryAdmit(CallKind kind) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  absl::Duration wait;
  if (kind == CallKind::kStream) {
    if (limits_.max_streams.has_value() && open_streams_ >= *limits_.max_streams) {
      return Refusal{"max_streams", kStreamRetryHint};
    }
    if (tpm_.has_value() && !tpm_->HasCredit(now, &wait)) return Refusal{"tpm", wait};
  }
  if (rpm_.has_value() && !rpm_->TryTake(1, now, &wait)) return Refusal{"rpm", wait};
  if (kind == CallKind::kStream) ++open_streams_;
  return std::nullopt;
}

void KeyLimiter::ChargeTokens(int64_t tokens) {
  if (tokens <= 0) return;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (tpm_.has_value()) tpm_->Charge(static_cast<double>(tokens), now);
}

void KeyLimiter::ReleaseStream() {
  absl::MutexLock lock(&mu_);
  TROUPE_CHECK(open_streams_ > 0);  // one release per admitted stream (CallLease::End)
  --open_streams_;
}

int KeyLimiter::open_streams() const {
  absl::MutexLock lock(&mu_);
  return open_streams_;
}

absl::StatusOr<std::shared_ptr<CallLease>> AdmitCall(const std::shared_ptr<KeyLimiter>& limiter,
                                                     CallKind kind, Refusal* refusal) {
  TROUPE_CHECK(limiter != nullptr);
  std::optional<Refusal> refused = limiter->TryAdmit(kind);
  if (!refused.has_value()) return std::make_shared<CallLease>(limiter, kind);
  *refusal = *std::move(refused);
  const absl::Duration wait = absl::Ceil(refusal->retry_after, absl::Milliseconds(1));
  const std::string retry =
      absl::StrCat("retry in ", absl::FormatDuration(wait), " (retry-after-ms trailer)");
  if (refusal->reason == "max_streams") {
    return absl::ResourceExhaustedError(
        absl::StrCat("this API key has its maximum of concurrent streams open; ", retry));
  }
  if (refusal->reason == "tpm") {
    return absl::ResourceExhaustedError(
        absl::StrCat("this API key used its tokens per minute (tpm); ", retry));
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("this API key used its requests per minute (rpm); ", retry));
}

}  // namespace troupe
