// Bounded multi-producer queue into the engine thread: new requests and cancellations.
// Thread-safe: Push* from any thread, never blocking; Drain/Wait from the engine thread only.
#pragma once

#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/request/request.h"

namespace troupe {

class Inbox {
 public:
  struct Batch {
    std::vector<Request> requests;
    std::vector<RequestId> cancels;
    bool shutdown = false;
  };

  // `capacity` bounds requests queued here plus those the engine reports as waiting.
  explicit Inbox(int capacity) : capacity_(capacity) {}

  // kResourceExhausted when full, kUnavailable after Close(). Never blocks (the mutex is held
  // only to move a request into the deque).
  [[nodiscard]] absl::Status PushRequest(Request request) ABSL_LOCKS_EXCLUDED(mu_);
  void PushCancel(RequestId id) ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses further requests and wakes the engine thread.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // Engine thread: the number of requests it holds in its waiting queue (counts against the
  // capacity).
  void SetEngineWaiting(int n) ABSL_LOCKS_EXCLUDED(mu_);

  // Engine thread: takes everything queued. When `block` is true, first waits until something
  // arrives (or Close()).
  Batch Take(bool block) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || !requests_.empty() || !cancels_.empty();
  }

  const int capacity_;
  absl::Mutex mu_;
  std::deque<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestId> cancels_ ABSL_GUARDED_BY(mu_);
  int engine_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace troupe
