#include "common/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TROUPE_CPU_RELAX() _mm_pause()
#else
#define TROUPE_CPU_RELAX() std::this_thread::yield()
#endif

namespace troupe {
namespace {
constexpr int kSpinIterations = 2000;   // ~0.1 ms of PAUSE spinning before a helper sleeps
constexpr int kWaitSpins = 2000;        // the caller's spins before it yields to the helpers
}

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(num_threads > 0 ? num_threads
                                   : std::max(1u, std::thread::hardware_concurrency())) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int thread_index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      TROUPE_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    (*task_)(thread_index, num_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::Run(const std::function<void(int, int)>& task) {
  if (num_threads_ == 1) {
    task(0, 1);
    return;
  }
  task_ = &task;
  pending_.store(num_threads_ - 1, std::memory_order_release);
  {
    // Publishing under the mutex pairs with the sleepers' predicate check, so no wake-up is lost.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) wake_.notify_all();
  task(0, num_threads_);
  // Spin briefly, then yield: on an oversubscribed machine a helper may be descheduled, and
  // spinning would only delay it further.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kWaitSpins) {
      TROUPE_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  task_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int parts = static_cast<int>(std::min<int64_t>(num_threads_, max_chunks));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  Run([&](int index, int) {
    if (index >= parts) return;
    const int64_t begin = n * index / parts;
    const int64_t end = n * (index + 1) / parts;
    if (begin < end) fn(begin, end);
  });
}

ThreadPool& DefaultThreadPool() {
  static ThreadPool* pool = new ThreadPool(0);
  return *pool;
}

}  // namespace troupe
