#include "server/work_queue.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace troupe {

WorkQueue::WorkQueue(const WorkQueueOptions& options) : options_(options) {
  const int num_threads = std::max(1, options_.num_threads);
  workers_.reserve(num_threads);
  for (int i = 0; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkQueue::~WorkQueue() { Shutdown(); }

absl::Status WorkQueue::Schedule(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("server is shutting down");
  if (static_cast<int>(jobs_.size()) >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many requests waiting for ", options_.name, " (limit ", options_.max_queued, ")"));
  }
  jobs_.push_back(std::move(job));
  return absl::OkStatus();
}

void WorkQueue::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkQueue::HasJobOrStopping));
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

int WorkQueue::DropQueued() {
  absl::MutexLock lock(&mu_);
  const int dropped = static_cast<int>(jobs_.size());
  jobs_.clear();
  return dropped;
}

void WorkQueue::Shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

}  // namespace troupe
