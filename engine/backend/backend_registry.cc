// CreateBackend: the one place that maps a device name to a backend implementation.
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"

namespace troupe {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options,
                                                       const ModelConfig& config,
                                                       const ModelWeights& weights,
                                                       const GgufFile* file) {
  if (options.device == "cpu") {
    auto cpu = CpuBackend::Create(options, config, weights, file);
    if (!cpu.ok()) return cpu.status();
    return std::unique_ptr<Backend>(std::move(*cpu));
  }
  // TODO(#5): "cuda" joins here in CUDA builds.
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", options.device, "' (available: cpu)"));
}

}  // namespace troupe
