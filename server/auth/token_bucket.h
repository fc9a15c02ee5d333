// A token bucket for per-key rate limits (rpm, tpm). Not thread-safe: KeyLimiter holds its
// buckets under its own mutex. Time is passed in, so tests can drive it with any clock.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace troupe {

// Refills continuously at `per_minute` tokens per minute up to `per_minute` (one minute's
// burst) and starts full. Charges after the fact may take the level below zero (a request's
// completion tokens are known only as it runs); the debt is paid back by the refill before
// the bucket has credit again.
class TokenBucket {
 public:
  // REQUIRES: per_minute >= 1.
  TokenBucket(int64_t per_minute, absl::Time now);

  // Takes `amount` tokens if the bucket holds at least that many and returns true; otherwise
  // takes nothing, returns false and sets *wait to the time until it will hold them.
  bool TryTake(double amount, absl::Time now, absl::Duration* wait);

  // True while the level is above zero; otherwise false and *wait is the time until it is.
  bool HasCredit(absl::Time now, absl::Duration* wait);

  // Takes `amount` tokens whatever the level (it may go negative).
  void Charge(double amount, absl::Time now);

  // A new rate (keys file reloaded): the level is kept, capped at the new capacity.
  // REQUIRES: per_minute >= 1.
  void SetRate(int64_t per_minute, absl::Time now);

  double Level(absl::Time now);

 private:
  void Refill(absl::Time now);
  // Time for the level to rise from its current value to `target`.
  absl::Duration TimeToReach(double target) const;

  double per_second_;
  double capacity_;
  double level_;
  absl::Time last_refill_;
};

}  // namespace troupe
