// ThreadOwner: the debug check behind "engine thread only". An object that one thread must own
// (Scheduler, BlockPool, ModelRunner, Sampler) holds a ThreadOwner named `engine_thread_`, and
// its public mutating methods start with TROUPE_DCHECK_ON_ENGINE_THREAD(). Used from any thread.
#pragma once

#include <atomic>
#include <thread>

#include "common/check.h"

namespace troupe {

// Whether TROUPE_DCHECK_ON_ENGINE_THREAD() checks anything (debug builds) or compiles away.
#ifdef NDEBUG
inline constexpr bool kThreadOwnerChecks = false;
#else
inline constexpr bool kThreadOwnerChecks = true;
#endif

// Remembers the thread that owns an object. It binds lazily: the first thread that asks
// (CalledOnOwnerThread) becomes the owner, so an object may be built on one thread (the engine
// is built on its caller's thread) and then be used on another, as long as no checked method
// ran before the hand-over. Detach() hands a bound object to a new owner explicitly.
//
// A copy starts unbound (it is a new object); assignment keeps the target's owner (the
// assigned-to object stays where it is). Costs one atomic word; in release builds nothing reads
// it. Thread-safe.
class ThreadOwner {
 public:
  ThreadOwner() = default;
  ThreadOwner(const ThreadOwner&) noexcept {}
  ThreadOwner& operator=(const ThreadOwner&) noexcept { return *this; }

  // Binds to the calling thread when unbound. True when the calling thread is the owner.
  bool CalledOnOwnerThread() {
    const std::thread::id self = std::this_thread::get_id();
    std::thread::id expected{};
    if (owner_.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) return true;
    return expected == self;
  }

  // Forgets the owner: the next thread that asks becomes it. REQUIRES: the old owner no longer
  // uses the object (a hand-over, ordered by whatever starts or signals the new thread).
  void Detach() { owner_.store(std::thread::id{}, std::memory_order_release); }

  bool bound() const { return owner_.load(std::memory_order_acquire) != std::thread::id{}; }

 private:
  std::atomic<std::thread::id> owner_{};
};

}  // namespace troupe

// Aborts (debug builds; nothing in release) when the calling thread is not the one that owns
// the enclosing object, which must have a member `ThreadOwner engine_thread_`. The first
// checked call binds the owner. The condition is never evaluated in release builds.
#ifdef NDEBUG
#define TROUPE_DCHECK_ON_ENGINE_THREAD() \
  do {                                   \
  } while (false && engine_thread_.CalledOnOwnerThread())
#else
#define TROUPE_DCHECK_ON_ENGINE_THREAD()                                              \
  TROUPE_CHECK_MSG(engine_thread_.CalledOnOwnerThread(),                              \
                   "engine-thread-only method called from a thread that does not own " \
                   "the object (docs/threading.md)")
#endif
