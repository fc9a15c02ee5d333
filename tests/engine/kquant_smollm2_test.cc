// SmolLM2-135M as llama-quantize makes a Q4_K_M of it (scripts/peer/make-kquant-models.sh): the
// 5-bit and K-quant types on a real model, against llama.cpp's greedy outputs on the same file
// (tests/testdata/smollm2-q4_k_m{,-f32kv}-greedy.json, scripts/golden/make_smollm2_golden.py
// with and without --f32-kv). The model is not fetched by scripts/test.sh (making it needs a
// llama.cpp build), so the tests skip without it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/formats/gguf.h"
#include "engine/request/collecting_sink.h"
#include "gtest/gtest.h"
#include "kernels/ggml_types.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden_compare.h"
#include "tests/testing/greedy.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/testdata.h"

namespace troupe {
namespace {

const std::string kModel = testing::SmolLmQ4KMPath();
const std::string kGolden =
    std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/smollm2-q4_k_m-greedy.json";
const std::string kF32KvGolden =
    std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/smollm2-q4_k_m-f32kv-greedy.json";

bool HaveModel() { return GgufFile::Open(kModel).ok(); }
constexpr const char* kSkip =
    "models/SmolLM2-135M-Instruct.Q4_K_M.gguf absent; make it with "
    "scripts/peer/build-llama-bench.sh && scripts/peer/make-kquant-models.sh";

// The file holds what the golden test is meant to exercise: Q5_0 for the 576-wide rows and a
// K-quant for ffn_down; and the golden was made from this very file.
TEST(SmolLm2KQuantTest, FileHoldsFiveBitAndKQuantMatrices) {
  if (!HaveModel()) GTEST_SKIP() << kSkip;
  auto file = GgufFile::Open(kModel);
  ASSERT_TRUE(file.ok()) << file.status();
  std::set<std::string> types;
  for (const GgufTensorInfo& t : (*file)->tensors()) {
    if (t.dims.size() == 2) types.insert(std::string(TraitsOf(t.type)->name));
  }
  EXPECT_TRUE(types.count("Q5_0")) << "Q5_0 matrices expected";
  EXPECT_TRUE(types.count("Q4_K") || types.count("Q6_K")) << "K-quant matrices expected";
  const nlohmann::json golden = testing::ReadJsonFile(kGolden);
  EXPECT_EQ(golden["model"], "SmolLM2-135M-Instruct.Q4_K_M.gguf");
}

// Runs every case of `golden_path` greedily with the given KV cache type. Greedy ids must equal
// llama.cpp's up to the first step where llama.cpp's top-2 logit gap is under 0.5 (a near-tie
// either engine's rounding can decide; as EngineTest.SmolLM2AgreesWithLlamaCpp), at least 10
// in all; if `logprob_tolerance` > 0, the first step's top-5 logprobs agree within it.
void ExpectGreedyMatches(const std::string& golden_path, KvCacheType kv_type,
                         double logprob_tolerance) {
  EngineOptions options;
  options.model_path = kModel;
  options.num_threads = 2;
  options.kv_cache_bytes = 64ll << 20;
  options.kv_cache_type = kv_type;
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const nlohmann::json golden = testing::ReadJsonFile(golden_path);
  double worst = 0.0;
  const int compared =
      testing::ExpectDecidedPrefixes(**engine, golden["cases"], 0.5, logprob_tolerance, &worst);
  std::printf("SmolLM2 Q4_K_M vs llama.cpp (%s): %d greedy tokens compared before a near-tie; "
              "first-step max |logprob diff| %.4f\n",
              golden["oracle"].get<std::string>().c_str(), compared, worst);
  EXPECT_GE(compared, 10);  // the check must not pass vacuously
}

// The default f16 KV cache against llama.cpp's defaults: greedy ids only. troupe's f16 cache
// follows llama.cpp's flash-attention arithmetic, this golden its other f16 path, and on this
// model the two move first-step logprobs by up to 0.47 (measured; llama.cpp's own f16-vs-f32
// spread here is 0.28), so logprobs are held to the f32 golden below.
TEST(SmolLm2KQuantTest, Q4KMGreedyMatchesLlamaCpp) {
  if (!HaveModel()) GTEST_SKIP() << kSkip;
  ExpectGreedyMatches(kGolden, KvCacheType::kF16, /*logprob_tolerance=*/0.0);
}

// Both engines with an F32 KV cache: greedy ids, and first-step logprobs within 0.3 (measured
// 0.20; SmolLM2 amplifies 8-bit activation rounding, docs/testing.md: a kernel that only
// reordered f32 operations once moved this to 0.40, docs/kernels.md, so a failure here after a
// kernel change may be that sensitivity; compare the kernels with PackedMatrixTest first).
TEST(SmolLm2KQuantTest, Q4KMWithF32KvMatchesLlamaCpp) {
  if (!HaveModel()) GTEST_SKIP() << kSkip;
  ExpectGreedyMatches(kF32KvGolden, KvCacheType::kF32, /*logprob_tolerance=*/0.3);
}

}  // namespace
}  // namespace troupe
