#include "engine/clients/model_embedder.h"

#include <utility>

#include "engine/request/collecting_sink.h"

namespace troupe {
namespace {

constexpr char kInternalCacheSalt[] = "troupe-internal/embedder";

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
  auto sink = std::make_shared<CollectingSink>();
  request.sink = sink;
  if (absl::Status submitted = engine_->Submit(std::move(request)); !submitted.ok()) return submitted;
  sink->Wait();
  if (absl::Status status = sink->status(); !status.ok()) return status;
  std::vector<float> embedding = sink->completion().embedding;
  if (embedding.empty()) return absl::InternalError("embed-only request returned no embedding");
  return embedding;
}

}  // namespace troupe
