// TokenBucket driven by a fake clock (the time is passed in): refill rate, burst cap, debt
// from after-the-fact charges, the wait hints and a rate change.
#include "server/auth/token_bucket.h"

#include "gtest/gtest.h"

namespace troupe {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

TEST(TokenBucketTest, StartsFullAndRefusesPastTheBurst) {
  TokenBucket bucket(3, kStart);  // 3 per minute, burst 3
  absl::Duration wait;
  EXPECT_TRUE(bucket.TryTake(1, kStart, &wait));
  EXPECT_TRUE(bucket.TryTake(1, kStart, &wait));
  EXPECT_TRUE(bucket.TryTake(1, kStart, &wait));
  EXPECT_FALSE(bucket.TryTake(1, kStart, &wait));
  EXPECT_EQ(wait, absl::Seconds(20));  // one token per 20 s
}

TEST(TokenBucketTest, RefillsAtTheRateAndCapsAtOneMinute) {
  TokenBucket bucket(60, kStart);  // one per second
  absl::Duration wait;
  ASSERT_TRUE(bucket.TryTake(60, kStart, &wait));
  EXPECT_FALSE(bucket.TryTake(1, kStart + absl::Milliseconds(999), &wait));
  EXPECT_EQ(wait, absl::Milliseconds(1));
  EXPECT_TRUE(bucket.TryTake(1, kStart + absl::Seconds(1), &wait));
  // An hour idle refills one minute's worth, no more.
  EXPECT_DOUBLE_EQ(bucket.Level(kStart + absl::Hours(1)), 60);
}

TEST(TokenBucketTest, ChargesMayGoNegativeAndTheDebtIsPaidFirst) {
  TokenBucket bucket(600, kStart);  // ten per second
  absl::Duration wait;
  EXPECT_TRUE(bucket.HasCredit(kStart, &wait));
  bucket.Charge(700, kStart);  // a long completion, known only at its end
  EXPECT_DOUBLE_EQ(bucket.Level(kStart), -100);
  EXPECT_FALSE(bucket.HasCredit(kStart, &wait));
  EXPECT_EQ(wait, absl::Seconds(10));
  EXPECT_FALSE(bucket.HasCredit(kStart + absl::Seconds(10), &wait));  // exactly zero: no credit
  EXPECT_TRUE(bucket.HasCredit(kStart + absl::Seconds(10) + absl::Milliseconds(100), &wait));
}

TEST(TokenBucketTest, AClockSteppingBackRefillsNothing) {
  TokenBucket bucket(60, kStart);
  absl::Duration wait;
  ASSERT_TRUE(bucket.TryTake(60, kStart, &wait));
  EXPECT_DOUBLE_EQ(bucket.Level(kStart - absl::Minutes(5)), 0);
  EXPECT_DOUBLE_EQ(bucket.Level(kStart + absl::Seconds(2)), 2);
}

TEST(TokenBucketTest, NewRateKeepsTheLevelUnderTheNewCap) {
  TokenBucket bucket(120, kStart);
  bucket.SetRate(30, kStart);
  EXPECT_DOUBLE_EQ(bucket.Level(kStart), 30);  // capped
  absl::Duration wait;
  ASSERT_TRUE(bucket.TryTake(30, kStart, &wait));
  EXPECT_FALSE(bucket.TryTake(1, kStart, &wait));
  EXPECT_EQ(wait, absl::Seconds(2));  // the new rate: one per 2 s
}

}  // namespace
}  // namespace troupe
