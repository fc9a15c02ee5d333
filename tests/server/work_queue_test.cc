#include "server/work_queue.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(WorkQueueTest, RunsEveryJobOnce) {
  WorkQueue queue(WorkQueueOptions{.num_threads = 2, .max_queued = 100});
  std::atomic<int> sum{0};
  absl::BlockingCounter done(50);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(queue.Schedule([&sum, &done, i] {
                       sum += i;
                       done.DecrementCount();
                     })
                    .ok());
  }
  done.Wait();
  EXPECT_EQ(sum.load(), 50 * 51 / 2);
}

TEST(WorkQueueTest, RefusesPastMaxQueuedAndDrainsOnShutdown) {
  WorkQueue queue(WorkQueueOptions{.num_threads = 1, .max_queued = 2});
  absl::Notification started, release;
  ASSERT_TRUE(queue.Schedule([&] {
                     started.Notify();
                     release.WaitForNotification();
                   })
                  .ok());
  started.WaitForNotification();  // the only worker is busy; the queue is empty
  std::atomic<int> ran{0};
  ASSERT_TRUE(queue.Schedule([&] { ++ran; }).ok());
  ASSERT_TRUE(queue.Schedule([&] { ++ran; }).ok());
  const absl::Status full = queue.Schedule([&] { ++ran; });
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("limit 2"), absl::string_view::npos);
  release.Notify();
  queue.Shutdown();
  EXPECT_EQ(ran.load(), 2);  // queued jobs ran before the workers exited
  EXPECT_EQ(queue.Schedule([] {}).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace troupe
