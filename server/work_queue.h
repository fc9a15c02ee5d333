// A small bounded pool of worker threads for prompt preparation (session lookup, chat-template
// rendering, tokenization), so gRPC reactions never do that work themselves.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace troupe {

struct WorkQueueOptions {
  int num_threads = 2;   // worker threads; >= 1
  int max_queued = 256;  // jobs waiting for a worker; Schedule fails past it
  std::string name = "prompt preparation";  // what the jobs are, for the full-queue message
};

// Thread-safe: Schedule and Shutdown may be called from any thread. Schedule never blocks
// (it takes mu_ briefly), so it is safe inside a gRPC reaction.
class WorkQueue {
 public:
  explicit WorkQueue(const WorkQueueOptions& options);
  ~WorkQueue();  // Shutdown()
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job` to run once on a worker thread.
  //  kResourceExhausted: max_queued jobs are already waiting.  kUnavailable: shut down.
  [[nodiscard]] absl::Status Schedule(std::function<void()> job) ABSL_LOCKS_EXCLUDED(mu_);

  // Drops the jobs still waiting (not the ones running); returns how many.
  int DropQueued() ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses new jobs, runs the ones already queued, and joins the workers. Idempotent.
  // REQUIRES: not called from a worker thread.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasJobOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !jobs_.empty();
  }

  // Constant after construction.
  const WorkQueueOptions options_;

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Written by the constructor and Shutdown only.
  std::vector<std::thread> workers_;
  absl::Mutex join_mu_;  // serializes concurrent Shutdown calls
};

}  // namespace troupe
