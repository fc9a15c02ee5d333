#include "engine/memory/model_embedder.h"

#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace troupe {
namespace {

constexpr char kInternalCacheSalt[] = "troupe-internal/embedder";

class EmbeddingSink final : public TokenSink {
 public:
  bool Push(TokenDelta) override { return true; }
  void Finish(const absl::Status& status, const Completion& completion) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = status;
      embedding_ = completion.embedding;
    }
    done_.Notify();
  }
  absl::StatusOr<std::vector<float>> Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return status_;
    if (embedding_.empty()) return absl::InternalError("embed-only request returned no embedding");
    return std::move(embedding_);
  }

 private:
  absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::vector<float> embedding_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

}  // namespace

int ModelEmbedder::dim() const { return engine_->model_info().hidden_dim; }

absl::StatusOr<std::vector<float>> ModelEmbedder::Embed(std::string_view text) const {
  if (static_cast<int>(text.size()) > max_text_bytes_) {
    size_t end = max_text_bytes_;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
  }
  Request request;
  request.id = engine_->NewRequestId();
  request.prompt = engine_->tokenizer().Encode(text, /*add_bos=*/true, /*parse_special=*/false);
  if (request.prompt.empty()) request.prompt.push_back(engine_->tokenizer().eos_id());
  request.sampling.temperature = 0;
  request.sampling.max_tokens = 1;
  request.priority = priority_;
  request.cache_salt = kInternalCacheSalt;
  request.embed_only = true;
  auto sink = std::make_shared<EmbeddingSink>();
  request.sink = sink;
  if (absl::Status submitted = engine_->Submit(std::move(request)); !submitted.ok()) return submitted;
  return sink->Wait();
}

}  // namespace troupe
