// CreateBackend and ResolveDevice: the one place that maps a device name to a backend
// implementation. The CUDA backend exists only in CUDA builds (TROUPE_HAVE_CUDA).
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"
#if TROUPE_HAVE_CUDA
#include "engine/backend/cuda_backend.h"
#endif

namespace troupe {

std::string ResolveDevice(std::string_view requested) {
  if (requested != "auto") return std::string(requested);
#if TROUPE_HAVE_CUDA
  if (CudaDeviceAvailable()) return "cuda";
#endif
  return "cpu";
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options,
                                                       const ModelConfig& config,
                                                       const ModelWeights& weights,
                                                       const GgufFile* file) {
  const std::string device = ResolveDevice(options.device);
  if (device == "cpu") {
    auto cpu = CpuBackend::Create(options, config, weights, file);
    if (!cpu.ok()) return cpu.status();
    return std::unique_ptr<Backend>(std::move(*cpu));
  }
#if TROUPE_HAVE_CUDA
  if (device == "cuda") {
    auto cuda = CudaBackend::Create(options, config, weights);
    if (!cuda.ok()) return cuda.status();
    return std::unique_ptr<Backend>(std::move(*cuda));
  }
  constexpr const char* kAvailable = "cpu, cuda, auto";
#else
  if (device == "cuda") {
    return absl::InvalidArgumentError(
        "device 'cuda' is not available: this troupe was built without CUDA (TROUPE_CUDA=OFF or "
        "no nvcc at build time)");
  }
  constexpr const char* kAvailable = "cpu, auto";
#endif
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", device, "' (available: ", kAvailable, ")"));
}

}  // namespace troupe
