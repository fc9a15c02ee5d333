// cuda::Embed: each token's bf16 table row widened to f32, exactly (widening is exact).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/embedding.h"
#include "kernels/ggml_types.h"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

void RunEmbedCase(int vocab, int dim, uint32_t seed) {
  SCOPED_TRACE("vocab=" + std::to_string(vocab) + " dim=" + std::to_string(dim));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Bf16> table(static_cast<size_t>(vocab) * dim);
  for (Bf16& b : table) b = Fp32ToBf16(normal(rng));
  // First and last ids, a repeat, and random ids.
  std::vector<int32_t> tokens = {0, vocab - 1, 3 % vocab, 3 % vocab};
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  for (int i = 0; i < 13; ++i) tokens.push_back(id(rng));
  const int n = static_cast<int>(tokens.size());
  std::vector<float> want(static_cast<size_t>(n) * dim);
  for (int t = 0; t < n; ++t) {
    for (int d = 0; d < dim; ++d) {
      want[static_cast<size_t>(t) * dim + d] =
          Bf16ToFp32(table[static_cast<size_t>(tokens[t]) * dim + d]);
    }
  }

  DeviceBuffer<Bf16> d_table(table);
  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<float> d_out(static_cast<size_t>(n) * dim);
  testing::PoisonNaN(d_out);
  cuda::Embed({.table = d_table.get(),
               .tokens = d_tokens.get(),
               .out = d_out.get(),
               .n_tokens = n,
               .dim = dim},
              nullptr);
  EXPECT_TRUE(testing::AllClose(d_out.Download(), want, 0.0, 0.0));
}

TEST(EmbedCudaTest, CopiesTableRowsExactly) {
  TROUPE_SKIP_WITHOUT_CUDA();
  RunEmbedCase(11, 8, 1);
  RunEmbedCase(49152, 576, 2);
  RunEmbedCase(1000, 4096, 3);
  RunEmbedCase(100, 1032, 4);  // 129 16-byte chunks: more than the block's 128 threads
}

}  // namespace
}  // namespace troupe
