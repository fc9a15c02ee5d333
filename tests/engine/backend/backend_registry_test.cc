// CreateBackend / ResolveDevice: device names, "auto", and a clear error when the CUDA backend
// cannot serve (a build without CUDA, or no device answering) — on any machine.
#include <gtest/gtest.h>

#include "engine/backend/backend.h"
#include "engine/model/dummy_model.h"
#if TROUPE_HAVE_CUDA
#include "engine/backend/cuda_backend.h"
#endif

namespace troupe {
namespace {

bool GpuAnswers() {
#if TROUPE_HAVE_CUDA
  return CudaDeviceAvailable();
#else
  return false;
#endif
}

struct Model {
  ModelConfig config = *DummyModelConfig("smollm2-135m");
  std::unique_ptr<DummyWeights> weights = *DummyWeights::Create(config, 1);
  BackendOptions Options(const std::string& device) const {
    return BackendOptions{.device = device, .num_threads = 1,
                          .kv = {.num_blocks = 4, .block_size = 16, .type = KvCacheType::kF16}};
  }
};

TEST(BackendRegistryTest, AutoPicksCudaOnlyWhenAGpuAnswers) {
  EXPECT_EQ(ResolveDevice("auto"), GpuAnswers() ? "cuda" : "cpu");
  EXPECT_EQ(ResolveDevice("cpu"), "cpu");
  EXPECT_EQ(ResolveDevice("cuda"), "cuda");
}

TEST(BackendRegistryTest, CpuAndAutoBuildABackend) {
  Model m;
  auto cpu = CreateBackend(m.Options("cpu"), m.config, m.weights->weights(), nullptr);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ((*cpu)->name(), "cpu");
  EXPECT_FALSE((*cpu)->samples_on_device());
  if (!GpuAnswers()) {
    auto automatic = CreateBackend(m.Options("auto"), m.config, m.weights->weights(), nullptr);
    ASSERT_TRUE(automatic.ok()) << automatic.status();
    EXPECT_EQ((*automatic)->name(), "cpu");
  }
}

TEST(BackendRegistryTest, CudaWithoutAGpuIsAClearError) {
  if (GpuAnswers()) GTEST_SKIP() << "a GPU answers here";
  Model m;
  auto cuda = CreateBackend(m.Options("cuda"), m.config, m.weights->weights(), nullptr);
  ASSERT_FALSE(cuda.ok());
#if TROUPE_HAVE_CUDA
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(cuda.status().message().find("no CUDA device"), absl::string_view::npos)
      << cuda.status();
#else
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(cuda.status().message().find("built without CUDA"), absl::string_view::npos)
      << cuda.status();
#endif
}

TEST(BackendRegistryTest, UnknownDeviceNamesTheChoices) {
  Model m;
  auto tpu = CreateBackend(m.Options("tpu"), m.config, m.weights->weights(), nullptr);
  ASSERT_FALSE(tpu.ok());
  EXPECT_EQ(tpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tpu.status().message().find("unknown device 'tpu'"), absl::string_view::npos);
  EXPECT_NE(tpu.status().message().find("cpu"), absl::string_view::npos);
}

}  // namespace
}  // namespace troupe
