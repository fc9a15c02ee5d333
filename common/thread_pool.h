// Fork-join thread pool for data-parallel kernels (matmuls, attention) on the engine thread.
//
// The calling thread takes part as worker 0, so a pool of N threads starts N-1 helpers. A parallel
// region costs a few hundred nanoseconds: helpers spin briefly on a generation counter before
// sleeping, because a decode step runs hundreds of small regions back to back.
//
// Thread-safety: Run/ParallelFor must be called from one thread at a time (the engine thread);
// the pool itself is not reentrant (a task must not call Run).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe {

class ThreadPool {
 public:
  // num_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls task(thread_index, num_threads) once on every thread of the pool, the caller included,
  // and returns when all calls have returned.
  void Run(const std::function<void(int thread_index, int num_threads)>& task);

  // Splits [0, n) into contiguous chunks of at least `grain` items and calls fn(begin, end) on
  // them in parallel. Runs inline when n is small or the pool has one thread.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void WorkerLoop(int thread_index);

  const int num_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;  // valid while a region runs
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

// A process-wide default pool sized to the machine, for benchmarks and tests that need one.
ThreadPool& DefaultThreadPool();

}  // namespace troupe
