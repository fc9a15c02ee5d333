// A TokenSink that keeps everything a request returns (tokens, text, logprobs, the final status
// and Completion) and lets another thread wait for its end: how the server's own internal
// requests (ratings, summaries, embeddings) and the tests read the engine's answers.
// Thread-safe: the engine thread calls Push/Finish, any thread the accessors and Wait.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/request/request.h"

namespace troupe {

class CollectingSink : public TokenSink {
 public:
  // Pushes after `stop_after_tokens` tokens return false (the consumer "went away"); -1 = never.
  explicit CollectingSink(int stop_after_tokens = -1) : stop_after_(stop_after_tokens) {}

  bool Push(TokenDelta delta) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    tokens_.insert(tokens_.end(), delta.token_ids.begin(), delta.token_ids.end());
    text_ += delta.text;
    for (SampleResult& lp : delta.logprobs) logprobs_.push_back(std::move(lp));
    return stop_after_ < 0 || static_cast<int>(tokens_.size()) < stop_after_;
  }
  void Finish(const absl::Status& status, const Completion& completion) override ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      ++num_finishes_;
      status_ = status;
      completion_ = completion;
    }
    done_.Notify();
  }

  // Blocks until Finish.
  void Wait() { done_.WaitForNotification(); }
  std::vector<TokenId> tokens() { absl::MutexLock l(&mu_); return tokens_; }
  std::string text() { absl::MutexLock l(&mu_); return text_; }
  std::vector<SampleResult> logprobs() { absl::MutexLock l(&mu_); return logprobs_; }
  absl::Status status() { absl::MutexLock l(&mu_); return status_; }
  Completion completion() { absl::MutexLock l(&mu_); return completion_; }
  int num_finishes() { absl::MutexLock l(&mu_); return num_finishes_; }

 private:
  const int stop_after_;
  absl::Mutex mu_;
  std::vector<TokenId> tokens_ ABSL_GUARDED_BY(mu_);
  std::string text_ ABSL_GUARDED_BY(mu_);
  std::vector<SampleResult> logprobs_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  Completion completion_ ABSL_GUARDED_BY(mu_);
  int num_finishes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification done_;
};

}  // namespace troupe
