#include "common/thread_owner.h"

#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/thread_testing.h"

namespace troupe {
namespace {

using ::troupe::testing::RunOnOtherThread;

TEST(ThreadOwnerTest, FirstCallerBecomesTheOwner) {
  ThreadOwner owner;
  EXPECT_FALSE(owner.bound());
  EXPECT_TRUE(owner.CalledOnOwnerThread());
  EXPECT_TRUE(owner.bound());
  EXPECT_TRUE(owner.CalledOnOwnerThread());
}

TEST(ThreadOwnerTest, OtherThreadIsNotTheOwner) {
  ThreadOwner owner;
  ASSERT_TRUE(owner.CalledOnOwnerThread());
  bool other = true;
  RunOnOtherThread([&] { other = owner.CalledOnOwnerThread(); });
  EXPECT_FALSE(other);
  EXPECT_TRUE(owner.CalledOnOwnerThread());  // the failed check did not steal it
}

TEST(ThreadOwnerTest, BindsToTheThreadThatUsesItFirstNotTheOneThatBuiltIt) {
  ThreadOwner owner;  // built here, as Engine::Load builds the scheduler
  bool first = false, again = false;
  RunOnOtherThread([&] {
    first = owner.CalledOnOwnerThread();
    again = owner.CalledOnOwnerThread();
  });
  EXPECT_TRUE(first);
  EXPECT_TRUE(again);
  EXPECT_FALSE(owner.CalledOnOwnerThread());
}

TEST(ThreadOwnerTest, DetachHandsTheObjectToTheNextCaller) {
  ThreadOwner owner;
  ASSERT_TRUE(owner.CalledOnOwnerThread());
  owner.Detach();
  EXPECT_FALSE(owner.bound());
  bool other = false;
  RunOnOtherThread([&] { other = owner.CalledOnOwnerThread(); });
  EXPECT_TRUE(other);
  EXPECT_FALSE(owner.CalledOnOwnerThread());
}

TEST(ThreadOwnerTest, CopyStartsUnboundAndAssignmentKeepsTheOwner) {
  ThreadOwner owner;
  ASSERT_TRUE(owner.CalledOnOwnerThread());
  ThreadOwner copy(owner);
  EXPECT_FALSE(copy.bound());

  ThreadOwner target;
  RunOnOtherThread([&] { ASSERT_TRUE(target.CalledOnOwnerThread()); });
  target = owner;
  EXPECT_FALSE(target.CalledOnOwnerThread());  // still the other thread's
}

// The macro reads a member named engine_thread_, as in Scheduler or BlockPool.
class Guarded {
 public:
  int Mutate() {
    TROUPE_DCHECK_ON_ENGINE_THREAD();
    return ++calls_;
  }

 private:
  int calls_ = 0;
  ThreadOwner engine_thread_;
};

TEST(ThreadOwnerTest, GuardedMethodRunsOnItsOwnerThread) {
  Guarded guarded;
  EXPECT_EQ(guarded.Mutate(), 1);
  EXPECT_EQ(guarded.Mutate(), 2);
}

TEST(ThreadOwnerDeathTest, GuardedMethodAbortsOnAnotherThread) {
  TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE();
  Guarded guarded;
  guarded.Mutate();
  EXPECT_DEATH(RunOnOtherThread([&] { guarded.Mutate(); }), testing::kNotOnOwnerThread);
}

TEST(ThreadOwnerDeathTest, ReleaseBuildsCompileTheCheckAway) {
  if (kThreadOwnerChecks) {
    GTEST_SKIP() << "built with assertions on (tests/CMakeLists.txt does so for this test): the "
                    "check is live";
  }
  Guarded guarded;
  guarded.Mutate();
  int result = 0;
  RunOnOtherThread([&] { result = guarded.Mutate(); });
  EXPECT_EQ(result, 2);
}

}  // namespace
}  // namespace troupe
