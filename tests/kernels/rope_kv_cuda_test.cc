// cuda::RopeKvWrite against the CPU sequence it fuses, ref::Rope on q and k then ref::KvWrite:
// plain and llama3-scaled frequencies, both pair orders, partial rotation (rot_dim < head_dim),
// positions up to 100000, and padding tokens (slot -1) whose cache rows must stay untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/rope_kv.h"
#include "kernels/ggml_types.h"
#include "kernels/paged_attention.h"
#include "kernels/rope.h"
#include "tests/testing/cuda_testing.h"

namespace troupe {
namespace {

using testing::DeviceBuffer;

struct RopeKvCase {
  RopeConfig rope;
  int n_heads = 8;
  int n_kv_heads = 2;
};

std::string Describe(const RopeKvCase& c) {
  return "head_dim=" + std::to_string(c.rope.head_dim) +
         " rot_dim=" + std::to_string(c.rope.rot_dim) + " neox=" + std::to_string(c.rope.neox) +
         " llama3=" + std::to_string(c.rope.scaling == RopeScaling::kLlama3) +
         " heads=" + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads);
}

void RunRopeKvCase(const RopeKvCase& c, uint32_t seed) {
  SCOPED_TRACE(Describe(c));
  const int hd = c.rope.head_dim;
  const int q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  const int row = q_dim + 2 * kv_dim;
  const std::vector<int32_t> positions = {0, 1, 7, 100, 4095, 8191, 8192, 65537, 99999, 100000};
  const int n = static_cast<int>(positions.size());
  constexpr int kNumSlots = 40;
  // Distinct random slots; tokens 2 and 6 are padding.
  std::mt19937 rng(seed);
  std::vector<int64_t> slot_pool(kNumSlots);
  std::iota(slot_pool.begin(), slot_pool.end(), 0);
  std::shuffle(slot_pool.begin(), slot_pool.end(), rng);
  std::vector<int64_t> slots(slot_pool.begin(), slot_pool.begin() + n);
  slots[2] = -1;
  slots[6] = -1;

  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> qkv(n * row);
  for (float& v : qkv) v = normal(rng);
  const std::vector<float> inv_freq = RopeInvFreq(c.rope);

  // Reference: split Q|K|V, rotate q and k, write k and v into an f32 cache.
  std::vector<float> q(n * q_dim), k(n * kv_dim), v(n * kv_dim);
  for (int t = 0; t < n; ++t) {
    std::copy_n(qkv.begin() + t * row, q_dim, q.begin() + t * q_dim);
    std::copy_n(qkv.begin() + t * row + q_dim, kv_dim, k.begin() + t * kv_dim);
    std::copy_n(qkv.begin() + t * row + q_dim + kv_dim, kv_dim, v.begin() + t * kv_dim);
  }
  const RopeArgs rope_args{.positions = positions.data(),
                           .inv_freq = inv_freq.data(),
                           .n_tokens = n,
                           .head_dim = hd,
                           .rot_dim = c.rope.rot_dim,
                           .neox = c.rope.neox};
  RopeArgs q_args = rope_args, k_args = rope_args;
  q_args.x = q.data();
  q_args.n_heads = c.n_heads;
  k_args.x = k.data();
  k_args.n_heads = c.n_kv_heads;
  ref::Rope(q_args);
  ref::Rope(k_args);
  std::vector<float> k_cache(kNumSlots * kv_dim, 0.0f), v_cache(kNumSlots * kv_dim, 0.0f);
  ref::KvWrite({.k = k.data(),
                .v = v.data(),
                .k_cache = k_cache.data(),
                .v_cache = v_cache.data(),
                .cache_type = KvCacheType::kF32,
                .slots = slots.data(),
                .n_tokens = n,
                .kv_dim = kv_dim});

  DeviceBuffer<float> d_qkv(qkv), d_inv_freq(inv_freq);
  DeviceBuffer<int32_t> d_positions(positions);
  DeviceBuffer<int64_t> d_slots(slots);
  DeviceBuffer<Bf16> d_q(n * q_dim), d_k_cache(kNumSlots * kv_dim), d_v_cache(kNumSlots * kv_dim);
  testing::PoisonNaN(d_q);
  testing::PoisonNaN(d_k_cache);
  testing::PoisonNaN(d_v_cache);
  cuda::RopeKvWrite({.qkv = d_qkv.get(),
                     .q_out = d_q.get(),
                     .k_cache = d_k_cache.get(),
                     .v_cache = d_v_cache.get(),
                     .positions = d_positions.get(),
                     .slots = d_slots.get(),
                     .inv_freq = d_inv_freq.get(),
                     .n_tokens = n,
                     .n_heads = c.n_heads,
                     .n_kv_heads = c.n_kv_heads,
                     .head_dim = hd,
                     .rot_dim = c.rope.rot_dim,
                     .neox = c.rope.neox},
                    nullptr);
  const std::vector<float> got_q = testing::ToFloat(d_q.Download());
  const std::vector<Bf16> got_k = d_k_cache.Download();
  const std::vector<Bf16> got_v = d_v_cache.Download();

  // Queries of every token, padding included. The angles are the same doubles on both sides;
  // f32 products may be fused differently, so allow one bf16 ulp plus f32 noise near zero.
  EXPECT_TRUE(testing::WithinBf16Ulps(got_q, q, 1.0f, 1e-5));

  std::vector<bool> written(kNumSlots, false);
  for (int64_t s : slots) {
    if (s >= 0) written[s] = true;
  }
  for (int s = 0; s < kNumSlots; ++s) {
    SCOPED_TRACE("slot " + std::to_string(s));
    const size_t base = static_cast<size_t>(s) * kv_dim;
    if (!written[s]) {
      // Not any token's slot (padding tokens included): still the poison.
      for (int i = 0; i < kv_dim; ++i) {
        ASSERT_EQ(got_k[base + i], testing::kPoisonBf16Bits) << "k element " << i;
        ASSERT_EQ(got_v[base + i], testing::kPoisonBf16Bits) << "v element " << i;
      }
      continue;
    }
    std::vector<float> got_k_row(kv_dim), want_k_row(kv_dim);
    for (int i = 0; i < kv_dim; ++i) {
      got_k_row[i] = Bf16ToFp32(got_k[base + i]);
      want_k_row[i] = k_cache[base + i];
      // V is copied, not computed: exactly the nearest-even bf16 of the input.
      ASSERT_EQ(got_v[base + i], Fp32ToBf16(v_cache[base + i])) << "v element " << i;
    }
    EXPECT_TRUE(testing::WithinBf16Ulps(got_k_row, want_k_row, 1.0f, 1e-5));
  }
}

RopeConfig Plain(int head_dim, int rot_dim, bool neox) {
  return {.head_dim = head_dim, .rot_dim = rot_dim, .theta = 10000.0f, .neox = neox};
}

// Llama 3.1's scaling: factor 8, low 1, high 4, original context 8192, theta 500000.
RopeConfig Llama3(int head_dim, int rot_dim, bool neox) {
  return {.head_dim = head_dim,
          .rot_dim = rot_dim,
          .theta = 500000.0f,
          .neox = neox,
          .scaling = RopeScaling::kLlama3,
          .factor = 8.0f,
          .low_freq_factor = 1.0f,
          .high_freq_factor = 4.0f,
          .original_context = 8192};
}

TEST(RopeKvWriteCudaTest, MatchesRopeThenKvWrite) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 10;
  for (bool neox : {false, true}) {
    RunRopeKvCase({.rope = Plain(64, 64, neox)}, seed++);
    RunRopeKvCase({.rope = Plain(128, 128, neox), .n_heads = 32, .n_kv_heads = 8}, seed++);
    RunRopeKvCase({.rope = Llama3(128, 128, neox), .n_heads = 32, .n_kv_heads = 8}, seed++);
    RunRopeKvCase({.rope = Llama3(64, 64, neox), .n_heads = 9, .n_kv_heads = 3}, seed++);
  }
}

TEST(RopeKvWriteCudaTest, PartialRotationCopiesTheRestOfTheHead) {
  TROUPE_SKIP_WITHOUT_CUDA();
  uint32_t seed = 40;
  for (bool neox : {false, true}) {
    RunRopeKvCase({.rope = Plain(64, 32, neox), .n_heads = 4, .n_kv_heads = 4}, seed++);
    RunRopeKvCase({.rope = Llama3(128, 64, neox)}, seed++);
    RunRopeKvCase({.rope = Plain(128, 2, neox), .n_heads = 2, .n_kv_heads = 1}, seed++);
  }
}

}  // namespace
}  // namespace troupe
