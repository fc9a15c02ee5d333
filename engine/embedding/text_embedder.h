// Text -> embedding vector, the interface memory retrieval uses. BertEmbedder
// (all-MiniLM-L6-v2, bert_embedder.h) is the default implementation.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace troupe {

class TextEmbedder {
 public:
  virtual ~TextEmbedder() = default;
  virtual int dim() const = 0;
  // dim() floats with unit L2 norm. Thread-safe.
  [[nodiscard]] virtual absl::StatusOr<std::vector<float>> Embed(std::string_view text) const = 0;
};

}  // namespace troupe
