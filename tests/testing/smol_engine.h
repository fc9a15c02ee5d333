// A test suite base that loads SmolLM2-135M-Instruct (the default model) once into a real
// engine shared by the suite's tests: 2 threads, 32 MiB of KV cache.
#pragma once

#include <memory>
#include <string>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/testing/model_paths.h"

namespace troupe::testing {

class SmolEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions options;
    options.model_path = SmolLmPath();
    options.num_threads = 2;
    options.kv_cache_bytes = 32ll << 20;
    auto engine = Engine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine).release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(engine_, nullptr) << "the engine did not load"; }

  static inline Engine* engine_ = nullptr;
};

}  // namespace troupe::testing
