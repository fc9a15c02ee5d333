// KeyLimiter and CallLease: max_streams slots taken and given back exactly once, rpm and tpm
// refusals with their reasons, and the limits kept or changed by SetLimits. rpm and tpm run on
// the real clock with rates low enough (1 per minute) that no refill can happen in a test.
#include "server/auth/key_limiter.h"

#include <memory>

#include "gtest/gtest.h"

namespace troupe {
namespace {

std::shared_ptr<KeyLimiter> Limiter(KeyLimits limits) { return std::make_shared<KeyLimiter>(limits); }

TEST(KeyLimiterTest, StreamSlotIsGivenBackOnceWhenTheLeaseEnds) {
  auto limiter = Limiter({.max_streams = 1});
  Refusal refusal;
  absl::StatusOr<std::shared_ptr<CallLease>> first = AdmitCall(limiter, CallKind::kStream, &refusal);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(limiter->open_streams(), 1);
  absl::StatusOr<std::shared_ptr<CallLease>> second = AdmitCall(limiter, CallKind::kStream, &refusal);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refusal.reason, "max_streams");
  EXPECT_GT(refusal.retry_after, absl::ZeroDuration());
  // Unary calls take no stream slot.
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kUnary, &refusal).ok());

  (*first)->End();
  (*first)->End();  // idempotent
  EXPECT_EQ(limiter->open_streams(), 0);
  first->reset();  // the destructor does not give the slot back a second time
  EXPECT_EQ(limiter->open_streams(), 0);
  absl::StatusOr<std::shared_ptr<CallLease>> third = AdmitCall(limiter, CallKind::kStream, &refusal);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(limiter->open_streams(), 1);
  third->reset();  // destruction without End() gives it back too
  EXPECT_EQ(limiter->open_streams(), 0);
}

TEST(KeyLimiterTest, RpmCountsEveryCallAndRefusesTheNext) {
  auto limiter = Limiter({.rpm = 2});
  Refusal refusal;
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kUnary, &refusal).ok());
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());
  absl::StatusOr<std::shared_ptr<CallLease>> third = AdmitCall(limiter, CallKind::kUnary, &refusal);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("rpm"), absl::string_view::npos);
  EXPECT_EQ(refusal.reason, "rpm");
  EXPECT_GT(refusal.retry_after, absl::Seconds(25));  // one token per 30 s
  EXPECT_LE(refusal.retry_after, absl::Seconds(30));
}

TEST(KeyLimiterTest, TpmRefusesStreamsOnceTheTokensAreSpent) {
  auto limiter = Limiter({.tpm = 100});
  Refusal refusal;
  absl::StatusOr<std::shared_ptr<CallLease>> lease = AdmitCall(limiter, CallKind::kStream, &refusal);
  ASSERT_TRUE(lease.ok());
  (*lease)->ChargeTokens(60);  // prompt
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());  // 40 left
  (*lease)->ChargeTokens(90);  // completion: 50 in debt
  absl::StatusOr<std::shared_ptr<CallLease>> refused = AdmitCall(limiter, CallKind::kStream, &refusal);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refusal.reason, "tpm");
  EXPECT_GT(refusal.retry_after, absl::Seconds(25));  // 50 tokens at 100/min: 30 s
  EXPECT_LE(refusal.retry_after, absl::Seconds(30));
  // Unary RPCs generate nothing and are not held to tpm.
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kUnary, &refusal).ok());
}

TEST(KeyLimiterTest, RefusedCallTakesNothing) {
  auto limiter = Limiter({.rpm = 1, .max_streams = 1});
  Refusal refusal;
  absl::StatusOr<std::shared_ptr<CallLease>> stream = AdmitCall(limiter, CallKind::kStream, &refusal);
  ASSERT_TRUE(stream.ok());
  EXPECT_FALSE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());
  EXPECT_EQ(refusal.reason, "max_streams");
  EXPECT_EQ(limiter->open_streams(), 1);
}

TEST(KeyLimiterTest, NewLimitsKeepOpenStreams) {
  auto limiter = Limiter({.max_streams = 2});
  Refusal refusal;
  absl::StatusOr<std::shared_ptr<CallLease>> a = AdmitCall(limiter, CallKind::kStream, &refusal);
  absl::StatusOr<std::shared_ptr<CallLease>> b = AdmitCall(limiter, CallKind::kStream, &refusal);
  ASSERT_TRUE(a.ok() && b.ok());
  limiter->SetLimits({.max_streams = 1});
  EXPECT_EQ(limiter->open_streams(), 2);
  EXPECT_FALSE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());
  a->reset();
  b->reset();
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());
  limiter->SetLimits({});  // no limits at all
  EXPECT_TRUE(AdmitCall(limiter, CallKind::kStream, &refusal).ok());
}

}  // namespace
}  // namespace troupe
