// The fallback TextEmbedder when no sentence-embedding model is installed: the served model's
// own hidden state, pooled at the last token (the final-norm state the output projection
// reads), L2-normalised, computed through the engine as an embed-only request at low priority
// (docs/embedding.md, "Fallback"). Weaker than a trained sentence encoder, but it needs nothing
// besides the model already loaded.
//
// Thread-safe; Embed blocks its caller until the engine has answered (never call it on the
// engine thread).
#pragma once

#include <string_view>
#include <vector>

#include "engine/embedding/text_embedder.h"
#include "engine/engine.h"

namespace troupe {

class ModelEmbedder final : public TextEmbedder {
 public:
  // `engine` must outlive the embedder.
  explicit ModelEmbedder(Engine* engine, int priority = -100, int max_text_bytes = 4000)
      : engine_(engine), priority_(priority), max_text_bytes_(max_text_bytes) {}

  int dim() const override;
  // Errors: the engine refused the request (kResourceExhausted, kUnavailable, ...).
  absl::StatusOr<std::vector<float>> Embed(std::string_view text) const override;

 private:
  Engine* const engine_;
  const int priority_;
  const int max_text_bytes_;
};

}  // namespace troupe
