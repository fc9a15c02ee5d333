// Helpers for the engine-thread checks' tests (common/thread_owner.h): run a call on a second
// thread, and the death tests' skip and message.
#pragma once

#include <thread>

#include "absl/functional/function_ref.h"
#include "common/thread_owner.h"
#include "gtest/gtest.h"

namespace troupe::testing {

// What TROUPE_DCHECK_ON_ENGINE_THREAD prints when it fires (EXPECT_DEATH's regex).
inline constexpr char kNotOnOwnerThread[] = "engine-thread-only method called from a thread";

// Runs `f` on a new thread and waits for it to end.
inline void RunOnOtherThread(absl::FunctionRef<void()> f) {
  std::thread thread([&f] { f(); });
  thread.join();
}

}  // namespace troupe::testing

// Starts a death test of the engine-thread checks: skips in release builds, where
// TROUPE_DCHECK_ON_ENGINE_THREAD compiles away, and forks the "threadsafe" way (the dying
// statement starts a thread).
#define TROUPE_ENGINE_THREAD_DEATH_TEST_PREAMBLE()                                          \
  do {                                                                                      \
    if (!::troupe::kThreadOwnerChecks) {                                                    \
      GTEST_SKIP() << "release build: TROUPE_DCHECK_ON_ENGINE_THREAD compiles away (NDEBUG)"; \
    }                                                                                       \
    GTEST_FLAG_SET(death_test_style, "threadsafe");                                         \
  } while (false)
