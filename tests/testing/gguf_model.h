// OpenGgufModel: a GGUF file opened as the engine opens it (mapping, config, weight views), for
// tests that build a backend or a model runner without an engine. Test-thread only.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "engine/formats/gguf.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

namespace troupe::testing {

struct GgufModel {
  std::unique_ptr<GgufFile> file;  // the weight views point into its mapping: keep it alive
  ModelConfig config;
  ModelWeights weights;
};

// Errors are the loader's (they name the file and the problem).
inline absl::StatusOr<GgufModel> OpenGgufModel(const std::string& path) {
  GgufModel m;
  TROUPE_ASSIGN_OR_RETURN(m.file, GgufFile::Open(path));
  TROUPE_ASSIGN_OR_RETURN(m.config, ModelConfigFromGguf(*m.file));
  TROUPE_ASSIGN_OR_RETURN(m.weights, LoadModelWeights(*m.file, m.config));
  return m;
}

}  // namespace troupe::testing
