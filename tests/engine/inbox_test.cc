// Inbox: the bounded multi-producer queue into the engine thread. Capacity (requests queued
// plus those the engine reports waiting) -> kResourceExhausted; Close -> kUnavailable; FIFO
// order; a consumer blocked in Take(true) wakes for a request, a cancel or Close.
#include "engine/inbox.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

Request MakeRequest(RequestId id) {
  Request r;
  r.id = id;
  r.prompt = {1, 2, 3};
  return r;
}

std::vector<RequestId> IdsOf(const Inbox::Batch& batch) {
  std::vector<RequestId> ids;
  for (const Request& r : batch.requests) ids.push_back(r.id);
  return ids;
}

TEST(InboxTest, TakeReturnsRequestsAndCancelsInArrivalOrder) {
  Inbox inbox(8);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(3)).ok());
  inbox.PushCancel(7);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(2)).ok());
  inbox.PushCancel(5);
  Inbox::Batch batch = inbox.Take(/*block=*/false);
  EXPECT_EQ(IdsOf(batch), (std::vector<RequestId>{3, 1, 2}));
  EXPECT_EQ(batch.cancels, (std::vector<RequestId>{7, 5}));
  EXPECT_FALSE(batch.shutdown);
  EXPECT_EQ(batch.requests[0].prompt, (std::vector<TokenId>{1, 2, 3}));  // moved in whole
}

TEST(InboxTest, TakeEmptiesTheInbox) {
  Inbox inbox(8);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  inbox.PushCancel(1);
  EXPECT_EQ(inbox.Take(false).requests.size(), 1u);
  Inbox::Batch again = inbox.Take(false);
  EXPECT_TRUE(again.requests.empty());
  EXPECT_TRUE(again.cancels.empty());
  EXPECT_FALSE(again.shutdown);
}

TEST(InboxTest, FullInboxIsResourceExhausted) {
  Inbox inbox(2);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(2)).ok());
  const absl::Status full = inbox.PushRequest(MakeRequest(3));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("2 waiting"), std::string::npos) << full;
  // Cancels are never refused: they free room rather than take it.
  inbox.PushCancel(1);
  EXPECT_EQ(inbox.Take(false).cancels, (std::vector<RequestId>{1}));
}

// Taken requests keep counting until the engine reports its waiting queue: the bound covers
// everything that waits, wherever it waits.
TEST(InboxTest, RequestsTheEngineHoldsCountAgainstTheCapacity) {
  Inbox inbox(2);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(2)).ok());
  ASSERT_EQ(inbox.Take(false).requests.size(), 2u);
  EXPECT_EQ(inbox.PushRequest(MakeRequest(3)).code(), absl::StatusCode::kResourceExhausted);
  inbox.SetEngineWaiting(1);  // one was admitted to the running batch
  EXPECT_TRUE(inbox.PushRequest(MakeRequest(4)).ok());
  EXPECT_EQ(inbox.PushRequest(MakeRequest(5)).code(), absl::StatusCode::kResourceExhausted);
  inbox.SetEngineWaiting(0);
  EXPECT_TRUE(inbox.PushRequest(MakeRequest(6)).ok());
  EXPECT_EQ(IdsOf(inbox.Take(false)), (std::vector<RequestId>{4, 6}));
}

TEST(InboxTest, ClosedInboxIsUnavailableAndReportsShutdown) {
  Inbox inbox(8);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  inbox.Close();
  EXPECT_EQ(inbox.PushRequest(MakeRequest(2)).code(), absl::StatusCode::kUnavailable);
  // Closed is not full: even an inbox with room says kUnavailable, the draining code.
  inbox.PushCancel(1);
  Inbox::Batch batch = inbox.Take(/*block=*/true);  // returns at once: closed
  EXPECT_TRUE(batch.shutdown);
  EXPECT_EQ(IdsOf(batch), (std::vector<RequestId>{1}));  // queued before Close: the engine ends it
  EXPECT_EQ(batch.cancels, (std::vector<RequestId>{1}));
  EXPECT_TRUE(inbox.Take(true).shutdown);  // and stays closed
}

TEST(InboxTest, FullAndClosedIsUnavailable) {
  Inbox inbox(1);
  ASSERT_TRUE(inbox.PushRequest(MakeRequest(1)).ok());
  inbox.Close();
  EXPECT_EQ(inbox.PushRequest(MakeRequest(2)).code(), absl::StatusCode::kUnavailable);
}

// The engine thread sleeps in Take(true) when nothing is runnable; each kind of work wakes it.
class InboxWakeTest : public ::testing::TestWithParam<int> {};

TEST_P(InboxWakeTest, BlockedTakeWakesForWork) {
  Inbox inbox(8);
  absl::Notification started, taken;
  Inbox::Batch batch;
  std::thread consumer([&] {
    started.Notify();
    batch = inbox.Take(/*block=*/true);
    taken.Notify();
  });
  started.WaitForNotification();
  EXPECT_FALSE(taken.HasBeenNotified());  // nothing queued: Take cannot have returned
  switch (GetParam()) {
    case 0:
      ASSERT_TRUE(inbox.PushRequest(MakeRequest(9)).ok());
      break;
    case 1:
      inbox.PushCancel(9);
      break;
    case 2:
      inbox.Close();
      break;
  }
  taken.WaitForNotification();
  consumer.join();
  EXPECT_EQ(IdsOf(batch), GetParam() == 0 ? std::vector<RequestId>{9} : std::vector<RequestId>{});
  EXPECT_EQ(batch.cancels,
            GetParam() == 1 ? std::vector<RequestId>{9} : std::vector<RequestId>{});
  EXPECT_EQ(batch.shutdown, GetParam() == 2);
}

std::string WakeName(const ::testing::TestParamInfo<int>& info) {
  const char* const names[] = {"Request", "Cancel", "Close"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(RequestCancelClose, InboxWakeTest, ::testing::Values(0, 1, 2), WakeName);

// Many producers, one consumer: nothing is lost or duplicated, and each producer's requests
// arrive in the order it pushed them.
TEST(InboxTest, ConcurrentProducersKeepTheirOwnOrder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 200;
  Inbox inbox(kProducers * kPerProducer);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&inbox, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        const absl::Status s = inbox.PushRequest(MakeRequest(p * kPerProducer + i));
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  std::vector<RequestId> got;
  while (static_cast<int>(got.size()) < kProducers * kPerProducer) {
    for (RequestId id : IdsOf(inbox.Take(/*block=*/true))) got.push_back(id);
  }
  for (std::thread& t : producers) t.join();
  std::vector<int> next(kProducers, 0);
  for (RequestId id : got) {
    const int p = static_cast<int>(id / kPerProducer);
    ASSERT_LT(p, kProducers);
    EXPECT_EQ(static_cast<int>(id % kPerProducer), next[p]++) << "producer " << p;
  }
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer);
}

}  // namespace
}  // namespace troupe
