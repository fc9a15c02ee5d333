// A TokenSink for tests: records every delta and the final status, and lets the test wait for
// the end of the request with absl::Notification (no sleeps).
#pragma once

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/request.h"

namespace troupe::testing {

class CollectingSink : public TokenSink {
 public:
  // Pushes after `stop_after_tokens` tokens return false (the consumer "went away"); -1 = never.
  explicit CollectingSink(int stop_after_tokens = -1) : stop_after_(stop_after_tokens) {}

  bool Push(TokenDelta delta) override {
    absl::MutexLock lock(&mu_);
    tokens_.insert(tokens_.end(), delta.token_ids.begin(), delta.token_ids.end());
    text_ += delta.text;
    for (auto& lp : delta.logprobs) logprobs_.push_back(std::move(lp));
    ++num_pushes_;
    return stop_after_ < 0 || static_cast<int>(tokens_.size()) < stop_after_;
  }
  void Finish(const absl::Status& status, const Completion& completion) override {
    {
      absl::MutexLock lock(&mu_);
      ++num_finishes_;
      status_ = status;
      completion_ = completion;
    }
    done_.Notify();
  }

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
  std::vector<TokenId> tokens_;
  std::string text_;
  std::vector<SampleResult> logprobs_;
  absl::Status status_;
  Completion completion_;
  int num_pushes_ = 0;
  int num_finishes_ = 0;
  absl::Notification done_;
};

}  // namespace troupe::testing
