#include "server/auth/token_bucket.h"

#include <algorithm>

#include "common/check.h"

namespace troupe {

TokenBucket::TokenBucket(int64_t per_minute, absl::Time now)
    : per_second_(static_cast<double>(per_minute) / 60.0),
      capacity_(static_cast<double>(per_minute)),
      level_(capacity_),
      last_refill_(now) {
  TROUPE_CHECK(per_minute >= 1);
}

void TokenBucket::Refill(absl::Time now) {
  if (now <= last_refill_) return;  // a clock that steps back refills nothing
  level_ = std::min(capacity_, level_ + absl::ToDoubleSeconds(now - last_refill_) * per_second_);
  last_refill_ = now;
}

absl::Duration TokenBucket::TimeToReach(double target) const {
  if (level_ >= target) return absl::ZeroDuration();
  return absl::Seconds((target - level_) / per_second_);
}

bool TokenBucket::TryTake(double amount, absl::Time now, absl::Duration* wait) {
  Refill(now);
  if (level_ >= amount) {
    level_ -= amount;
    return true;
  }
  *wait = TimeToReach(amount);
  return false;
}

bool TokenBucket::HasCredit(absl::Time now, absl::Duration* wait) {
  Refill(now);
  if (level_ > 0) return true;
  *wait = TimeToReach(0);  // credit comes just after; callers round the hint up
  return false;
}

void TokenBucket::Charge(double amount, absl::Time now) {
  Refill(now);
  level_ -= amount;
}

void TokenBucket::SetRate(int64_t per_minute, absl::Time now) {
  TROUPE_CHECK(per_minute >= 1);
  Refill(now);
  per_second_ = static_cast<double>(per_minute) / 60.0;
  capacity_ = static_cast<double>(per_minute);
  level_ = std::min(level_, capacity_);
}

double TokenBucket::Level(absl::Time now) {
  Refill(now);
  return level_;
}

}  // namespace troupe
