#include "engine/inbox.h"

#include "absl/strings/str_cat.h"

namespace troupe {

absl::Status Inbox::PushRequest(Request request) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int>(requests_.size()) + engine_waiting_ >= capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request queue is full (", capacity_, " waiting); retry later"));
  }
  requests_.push_back(std::move(request));
  return absl::OkStatus();
}

void Inbox::PushCancel(RequestId id) {
  absl::MutexLock lock(&mu_);
  cancels_.push_back(id);
}

void Inbox::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void Inbox::SetEngineWaiting(int n) {
  absl::MutexLock lock(&mu_);
  engine_waiting_ = n;
}

Inbox::Batch Inbox::Take(bool block) {
  absl::MutexLock lock(&mu_);
  if (block) mu_.Await(absl::Condition(this, &Inbox::HasWork));
  Batch batch;
  batch.requests.assign(std::make_move_iterator(requests_.begin()),
                        std::make_move_iterator(requests_.end()));
  requests_.clear();
  batch.cancels.swap(cancels_);
  batch.shutdown = closed_;
  // Requests move to the engine's waiting queue; count them there until it reports back.
  engine_waiting_ += static_cast<int>(batch.requests.size());
  return batch;
}

}  // namespace troupe
