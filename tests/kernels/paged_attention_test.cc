// ref::KvWrite, ref::PagedAttention and the CPU backend's cpu::PagedAttention against a naive
// contiguous attention in double, over random non-contiguous block tables, GQA ratios and
// ragged lengths around the block size; and the tiled kernel's row-for-row bit identity.
#include "kernels/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/ggml_types.h"

namespace troupe {
namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr Fp16 kNan16 = 0x7e00;

struct Shape {
  int n_heads = 2;
  int n_kv_heads = 2;
  int head_dim = 64;
  int block_size = 16;
};

// A batch of sequences with contiguous K/V/Q, and the same K/V scattered into a paged cache.
struct Batch {
  Shape shape;
  std::vector<int> lens;                 // [n_seqs]
  std::vector<std::vector<float>> k, v;  // per seq [len, n_kv_heads * head_dim]
  std::vector<std::vector<float>> q;     // per seq [len, n_heads * head_dim]
  int max_blocks = 0;
  std::vector<int32_t> block_tables;    // [n_seqs, max_blocks], -1 past each sequence
  std::vector<float> k_cache, v_cache;  // [num_blocks, block_size, kv_dim]; NaN if unwritten
  std::vector<Fp16> k_cache16, v_cache16;  // the same cache in f16

  int kv_dim() const { return shape.n_kv_heads * shape.head_dim; }
  int q_dim() const { return shape.n_heads * shape.head_dim; }
};

std::vector<float> Random(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

// Random K/V/Q, blocks handed out in a random order from a pool with spare blocks, and the
// cache filled through KvWrite (so any read of an unwritten slot yields NaN).
Batch MakeBatch(const Shape& shape, const std::vector<int>& lens, uint32_t seed,
                float q_scale = 1.0f) {
  std::mt19937 rng(seed);
  Batch b;
  b.shape = shape;
  b.lens = lens;
  int total_blocks = 0;
  for (int len : lens) {
    const int blocks = (len + shape.block_size - 1) / shape.block_size;
    b.max_blocks = std::max(b.max_blocks, blocks + 1);  // + 1: a trailing -1 entry
    total_blocks += blocks;
  }
  const int num_blocks = total_blocks + 5;
  std::vector<int32_t> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  b.block_tables.assign(lens.size() * b.max_blocks, -1);
  b.k_cache.assign(static_cast<size_t>(num_blocks) * shape.block_size * b.kv_dim(), kNan);
  b.v_cache = b.k_cache;
  b.k_cache16.assign(b.k_cache.size(), kNan16);
  b.v_cache16 = b.k_cache16;
  size_t next = 0;
  for (size_t s = 0; s < lens.size(); ++s) {
    const int len = lens[s];
    b.k.push_back(Random(static_cast<size_t>(len) * b.kv_dim(), rng));
    b.v.push_back(Random(static_cast<size_t>(len) * b.kv_dim(), rng));
    b.q.push_back(Random(static_cast<size_t>(len) * b.q_dim(), rng, q_scale));
    int32_t* table = &b.block_tables[s * b.max_blocks];
    for (int i = 0; i * shape.block_size < len; ++i) table[i] = pool[next++];
    std::vector<int64_t> slots(len);
    for (int t = 0; t < len; ++t) {
      slots[t] = static_cast<int64_t>(table[t / shape.block_size]) * shape.block_size +
                 t % shape.block_size;
    }
    ref::KvWrite({.k = b.k[s].data(),
                  .v = b.v[s].data(),
                  .k_cache = b.k_cache.data(),
                  .v_cache = b.v_cache.data(),
                  .slots = slots.data(),
                  .n_tokens = len,
                  .kv_dim = b.kv_dim()});
    ref::KvWrite({.k = b.k[s].data(),
                  .v = b.v[s].data(),
                  .k_cache = b.k_cache16.data(),
                  .v_cache = b.v_cache16.data(),
                  .cache_type = KvCacheType::kF16,
                  .slots = slots.data(),
                  .n_tokens = len,
                  .kv_dim = b.kv_dim()});
  }
  return b;
}

// Query tokens of a call: (seq, pos) pairs, with the rows of Q they use gathered.
struct Queries {
  std::vector<int32_t> seq, pos;
  std::vector<float> q;  // [n_tokens, n_heads * head_dim]
};

Queries Gather(const Batch& b, const std::vector<std::pair<int, int>>& tokens) {
  Queries out;
  for (auto [s, p] : tokens) {
    out.seq.push_back(s);
    out.pos.push_back(p);
    const float* row = &b.q[s][static_cast<size_t>(p) * b.q_dim()];
    out.q.insert(out.q.end(), row, row + b.q_dim());
  }
  return out;
}

PagedAttentionArgs Args(const Batch& b, const Queries& qs, std::vector<float>& out,
                       KvCacheType type) {
  const bool f16 = type == KvCacheType::kF16;
  return {.q = qs.q.data(),
                       .k_cache = f16 ? static_cast<const void*>(b.k_cache16.data()) : b.k_cache.data(),
                       .v_cache = f16 ? static_cast<const void*>(b.v_cache16.data()) : b.v_cache.data(),
                       .cache_type = type,
                       .out = out.data(),
                       .token_seq = qs.seq.data(),
                       .token_pos = qs.pos.data(),
                       .block_tables = b.block_tables.data(),
                       .n_tokens = static_cast<int64_t>(qs.seq.size()),
                       .max_blocks_per_seq = b.max_blocks,
                       .n_heads = b.shape.n_heads,
                       .n_kv_heads = b.shape.n_kv_heads,
                       .head_dim = b.shape.head_dim,
                       .block_size = b.shape.block_size,
                       .scale = 1.0f / std::sqrt(static_cast<float>(b.shape.head_dim))};
}

// Runs ref::PagedAttention over `qs` on the cache of `type`; out starts as `fill`.
std::vector<float> RunPaged(const Batch& b, const Queries& qs, float fill = 0.0f,
                            KvCacheType type = KvCacheType::kF32) {
  std::vector<float> out(qs.q.size(), fill);
  ref::PagedAttention(Args(b, qs, out, type));
  return out;
}

// The same through cpu::PagedAttention on a 2-thread pool.
std::vector<float> RunCpu(const Batch& b, const Queries& qs, float fill = 0.0f,
                          KvCacheType type = KvCacheType::kF32) {
  static ThreadPool pool(2);
  std::vector<float> out(qs.q.size(), fill);
  cpu::PagedAttention(Args(b, qs, out, type), pool);
  return out;
}

double RoundF16(float x) { return Fp16ToFp32(Fp32ToFp16(x)); }

// Naive causal attention on the contiguous K/V, in double; the oracle. With `f16_inputs`, Q, K
// and V are first rounded to f16 as the f16 cache path sees them.
std::vector<double> Naive(const Batch& b, const Queries& qs, bool f16_inputs = false) {
  const auto in = [&](float x) { return f16_inputs ? RoundF16(x) : static_cast<double>(x); };
  const int hd = b.shape.head_dim;
  const int group = b.shape.n_heads / b.shape.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> out(qs.q.size(), 0.0);
  for (size_t t = 0; t < qs.seq.size(); ++t) {
    const std::vector<float>& k = b.k[qs.seq[t]];
    const std::vector<float>& v = b.v[qs.seq[t]];
    const int n = qs.pos[t] + 1;
    for (int h = 0; h < b.shape.n_heads; ++h) {
      const float* q = &qs.q[(t * b.shape.n_heads + h) * hd];
      const size_t kv_off = static_cast<size_t>(h / group) * hd;
      std::vector<double> w(n);
      double max_w = -INFINITY, sum = 0;
      for (int j = 0; j < n; ++j) {
        double dot = 0;
        for (int d = 0; d < hd; ++d)
          dot += in(q[d]) * in(k[j * b.kv_dim() + kv_off + d]);
        w[j] = dot * scale;
        max_w = std::max(max_w, w[j]);
      }
      for (double& x : w) sum += (x = std::exp(x - max_w));
      double* o = &out[(t * b.shape.n_heads + h) * hd];
      for (int j = 0; j < n; ++j) {
        for (int d = 0; d < hd; ++d) o[d] += w[j] / sum * in(v[j * b.kv_dim() + kv_off + d]);
      }
    }
  }
  return out;
}

// |got - want| <= abs_tol + rel_tol * |want| everywhere (NaN fails).
void ExpectClose(const std::vector<float>& got, const std::vector<double>& want,
                 double abs_tol = 1e-5, double rel_tol = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  double max_err = 0;
  int mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]);
    max_err = std::max(max_err, std::isnan(err) ? INFINITY : err);
    if (!(err <= abs_tol + rel_tol * std::abs(want[i])) && ++mismatches <= 5) {
      ADD_FAILURE() << "element " << i << ": got " << got[i] << " want " << want[i];
    }
  }
  EXPECT_EQ(mismatches, 0) << "max abs error " << max_err;
}

std::vector<std::pair<int, int>> AllTokensShuffled(const std::vector<int>& lens, uint32_t seed) {
  std::vector<std::pair<int, int>> tokens;
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int p = 0; p < lens[s]; ++p) tokens.emplace_back(static_cast<int>(s), p);
  }
  std::mt19937 rng(seed);
  std::shuffle(tokens.begin(), tokens.end(), rng);
  return tokens;
}

TEST(PagedAttentionTest, MatchesNaiveOverGqaRatiosAndRaggedLengths) {
  const std::vector<int> lens = {1, 15, 16, 17, 100};
  for (int ratio : {1, 3, 4}) {
    for (int head_dim : {64, 40}) {
      SCOPED_TRACE(testing::Message() << "ratio=" << ratio << " head_dim=" << head_dim);
      const Shape shape{.n_heads = 2 * ratio, .n_kv_heads = 2, .head_dim = head_dim};
      const Batch b = MakeBatch(shape, lens, 100 + ratio + head_dim);
      const Queries qs = Gather(b, AllTokensShuffled(lens, ratio));
      ExpectClose(RunPaged(b, qs), Naive(b, qs));
    }
  }
}

TEST(PagedAttentionTest, MatchesNaiveForDecodeBatchWithPeakedScores) {
  // One query per sequence at its last position; q scaled up so scores reach the hundreds and
  // only a running max keeps exp() finite. Block size 8 gives many blocks per sequence.
  const std::vector<int> lens = {1, 9, 64, 250};
  const Shape shape{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .block_size = 8};
  const Batch b = MakeBatch(shape, lens, 11, /*q_scale=*/40.0f);
  const Queries qs = Gather(b, {{3, 249}, {0, 0}, {2, 63}, {1, 8}});
  ExpectClose(RunPaged(b, qs), Naive(b, qs));
}

// The f16 cache rounds Q, K and V to f16 (the oracle does the same) and keeps the running sum
// of p * V in f16, as llama.cpp does: outputs of magnitude ~1 then carry errors of a few f16
// ulps (2^-11 relative each), growing slowly with the number of keys. Measured max abs error
// 2.6e-3; the bound is 6e-3.
TEST(PagedAttentionTest, F16CacheMatchesNaiveWithinF16Rounding) {
  const std::vector<int> lens = {1, 15, 16, 17, 100};
  for (int ratio : {1, 3}) {
    SCOPED_TRACE(testing::Message() << "ratio=" << ratio);
    const Shape shape{.n_heads = 2 * ratio, .n_kv_heads = 2, .head_dim = 64};
    const Batch b = MakeBatch(shape, lens, 300 + ratio);
    const Queries qs = Gather(b, AllTokensShuffled(lens, ratio));
    ExpectClose(RunPaged(b, qs, 0.0f, KvCacheType::kF16), Naive(b, qs, true), 6e-3, 0.0);
  }
  const Shape peaked{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .block_size = 8};
  const Batch b = MakeBatch(peaked, {1, 9, 64, 250}, 12, /*q_scale=*/40.0f);
  const Queries qs = Gather(b, {{3, 249}, {0, 0}, {2, 63}, {1, 8}});
  ExpectClose(RunPaged(b, qs, 0.0f, KvCacheType::kF16), Naive(b, qs, true), 6e-3, 0.0);
}

TEST(PagedAttentionTest, SingleKeyReturnsItsValue) {
  const Shape shape{.n_heads = 6, .n_kv_heads = 2, .head_dim = 16};
  const Batch b = MakeBatch(shape, {1, 20}, 3);
  const Queries qs = Gather(b, {{0, 0}, {1, 0}});
  const std::vector<float> out = RunPaged(b, qs);
  for (int t = 0; t < 2; ++t) {
    for (int h = 0; h < 6; ++h) {
      for (int d = 0; d < 16; ++d) {
        EXPECT_EQ(out[(t * 6 + h) * 16 + d], b.v[t][(h / 3) * 16 + d]) << t << "," << h;
      }
    }
  }
}

TEST(PagedAttentionTest, UniformKeysAverageValues) {
  // Every position has the same K, so all scores tie and the output is the mean of V.
  const Shape shape{.n_heads = 4, .n_kv_heads = 1, .head_dim = 8};
  constexpr int kLen = 37;
  Batch b = MakeBatch(shape, {kLen}, 5);
  std::mt19937 rng(9);
  const std::vector<float> k_row = Random(8, rng);
  std::vector<int64_t> slots(kLen);
  for (int t = 0; t < kLen; ++t) {
    std::copy(k_row.begin(), k_row.end(), b.k[0].begin() + t * 8);
    slots[t] = static_cast<int64_t>(b.block_tables[t / 16]) * 16 + t % 16;
  }
  ref::KvWrite({.k = b.k[0].data(),
                .v = b.v[0].data(),
                .k_cache = b.k_cache.data(),
                .v_cache = b.v_cache.data(),
                .slots = slots.data(),
                .n_tokens = kLen,
                .kv_dim = 8});
  const Queries qs = Gather(b, {{0, kLen - 1}, {0, 19}});
  const std::vector<float> out = RunPaged(b, qs);
  for (int t = 0; t < 2; ++t) {
    const int n = qs.pos[t] + 1;
    for (int d = 0; d < 8; ++d) {
      double mean = 0;
      for (int j = 0; j < n; ++j) mean += b.v[0][j * 8 + d] / n;
      for (int h = 0; h < 4; ++h) EXPECT_NEAR(out[(t * 4 + h) * 8 + d], mean, 1e-6);
    }
  }
}

TEST(PagedAttentionTest, SkipsPaddingTokens) {
  const Shape shape{.n_heads = 2, .n_kv_heads = 1, .head_dim = 8};
  const Batch b = MakeBatch(shape, {5}, 6);
  Queries qs = Gather(b, {{0, 4}, {0, 2}, {0, 3}});
  qs.seq[1] = -1;
  const std::vector<float> out = RunPaged(b, qs, /*fill=*/7.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[16 + i], 7.0f);
  Queries real = Gather(b, {{0, 4}, {0, 3}});
  const std::vector<double> want = Naive(b, real);
  for (int i = 0; i < 16; ++i) {
    EXPECT_NEAR(out[i], want[i], 1e-5);
    EXPECT_NEAR(out[32 + i], want[16 + i], 1e-5);
  }
}

// Every token of every sequence, sequence by sequence in position order, as in a prefill step.
std::vector<std::pair<int, int>> AllTokensInOrder(const std::vector<int>& lens) {
  std::vector<std::pair<int, int>> tokens;
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int p = 0; p < lens[s]; ++p) tokens.emplace_back(static_cast<int>(s), p);
  }
  return tokens;
}

// Prefill-shaped batches (runs of tokens per sequence: tiles) and shuffled ones (runs of one
// token: the per-token layout), both cache types, against the double oracle.
TEST(CpuPagedAttentionTest, MatchesNaiveOverLayoutsGqaRatiosAndHeadDims) {
  const std::vector<int> lens = {1, 15, 16, 17, 100};
  for (int ratio : {1, 3, 8}) {
    for (int head_dim : {64, 128, 40, 8}) {
      SCOPED_TRACE(testing::Message() << "ratio=" << ratio << " head_dim=" << head_dim);
      const Shape shape{.n_heads = 2 * ratio, .n_kv_heads = 2, .head_dim = head_dim};
      const Batch b = MakeBatch(shape, lens, 500 + ratio + head_dim);
      for (const auto& tokens : {AllTokensInOrder(lens), AllTokensShuffled(lens, ratio)}) {
        const Queries qs = Gather(b, tokens);
        ExpectClose(RunCpu(b, qs), Naive(b, qs));
        ExpectClose(RunCpu(b, qs, 0.0f, KvCacheType::kF16), Naive(b, qs, true), 6e-3, 0.0);
      }
    }
  }
}

TEST(CpuPagedAttentionTest, MatchesNaiveWithPeakedScoresAndPadding) {
  const std::vector<int> lens = {1, 9, 64, 250};
  const Shape shape{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .block_size = 8};
  const Batch b = MakeBatch(shape, lens, 13, /*q_scale=*/40.0f);
  // A decode batch, then a prefill of the last 40 positions of sequence 3 with a padding row.
  Queries decode = Gather(b, {{3, 249}, {0, 0}, {2, 63}, {1, 8}});
  ExpectClose(RunCpu(b, decode), Naive(b, decode));
  std::vector<std::pair<int, int>> chunk;
  for (int p = 210; p < 250; ++p) chunk.emplace_back(3, p);
  Queries prefill = Gather(b, chunk);
  const std::vector<double> want = Naive(b, prefill);
  prefill.seq[7] = -1;
  const std::vector<float> got = RunCpu(b, prefill, /*fill=*/7.0f);
  const int row = b.q_dim();
  for (int i = 0; i < row; ++i) EXPECT_EQ(got[7 * row + i], 7.0f);
  for (int t = 0; t < 40; ++t) {
    if (t == 7) continue;
    for (int i = 0; i < row; ++i) EXPECT_NEAR(got[t * row + i], want[t * row + i], 1e-5 + 1e-4 * std::abs(want[t * row + i]));
  }
}

// A row's result must not depend on which rows share its tile, nor on the layout (lanes or
// per token): batching and chunking must never change an output.
// Head dims 64 and 128 take the per-token layout's wide path, 40 its generic one.
TEST(CpuPagedAttentionTest, RowResultsAreBitIdenticalAcrossTilings) {
  if (!cpu::HasTiledAttention()) GTEST_SKIP() << "no AVX-512 in this build";
  for (int head_dim : {40, 64, 128}) {
    const Shape shape{.n_heads = 6, .n_kv_heads = 2, .head_dim = head_dim, .block_size = 16};
    const Batch b = MakeBatch(shape, {70}, 21, /*q_scale=*/8.0f);
    for (KvCacheType type : {KvCacheType::kF32, KvCacheType::kF16}) {
      SCOPED_TRACE(testing::Message() << (type == KvCacheType::kF16 ? "f16" : "f32") << " head_dim=" << head_dim);
      const Queries qs = Gather(b, AllTokensInOrder({70}));
      std::vector<float> planned(qs.q.size(), 0.0f);
      const PagedAttentionArgs args = Args(b, qs, planned, type);
      for (const cpu::AttentionTile& tile : cpu::PlanAttentionTiles(args)) cpu::internal::AttendTile(args, tile);
      const int group = 3;
      // Tilings that start at other rows, and every token alone in both layouts.
      for (int start : {1, 5, 11}) {
        std::vector<float> shifted(qs.q.size(), 0.0f);
        PagedAttentionArgs a = Args(b, qs, shifted, type);
        for (int kvh = 0; kvh < 2; ++kvh) {
          cpu::internal::AttendTileLanes(a, {.token_begin = 0, .row_begin = 0, .row_end = start, .kv_head = kvh});
          for (int r = start; r < 70 * group; r += 16) {
            cpu::internal::AttendTileLanes(
                a, {.token_begin = 0, .row_begin = r, .row_end = std::min(70 * group, r + 16), .kv_head = kvh});
          }
        }
        EXPECT_EQ(shifted, planned) << "tiles from row " << start;
      }
      std::vector<float> per_token(qs.q.size(), 0.0f), lanes(qs.q.size(), 0.0f);
      PagedAttentionArgs pt = Args(b, qs, per_token, type);
      PagedAttentionArgs ln = Args(b, qs, lanes, type);
      for (int t = 0; t < 70; ++t) {
        for (int kvh = 0; kvh < 2; ++kvh) {
          const cpu::AttentionTile one{.token_begin = t, .row_begin = 0, .row_end = group, .kv_head = kvh};
          cpu::internal::AttendTile(pt, one);  // per-token layout
          cpu::internal::AttendTileLanes(ln, one);
        }
      }
      EXPECT_EQ(per_token, planned);
      EXPECT_EQ(lanes, planned);
    }
  }
}

TEST(KvWriteTest, WritesSlotsAndLeavesSkippedSlotsUntouched) {
  constexpr int kKvDim = 6, kBlockSize = 4, kBlocks = 3;
  // One guard row either side of each cache catches writes outside it (e.g. to slot -1).
  constexpr int kCacheFloats = kBlocks * kBlockSize * kKvDim;
  std::vector<float> k_storage(kCacheFloats + 2 * kKvDim, -1.0f);
  std::vector<float> v_storage(k_storage.size(), -2.0f);
  float* k_cache = k_storage.data() + kKvDim;
  float* v_cache = v_storage.data() + kKvDim;
  std::vector<float> k(4 * kKvDim), v(4 * kKvDim);
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = static_cast<float>(i);
    v[i] = 100.0f + i;
  }
  // Token 0 -> block 2 offset 1, token 1 skipped, token 2 -> block 0 offset 3, token 3 skipped.
  const std::vector<int64_t> slots = {2 * kBlockSize + 1, -1, 3, -1};
  ref::KvWrite({.k = k.data(),
                .v = v.data(),
                .k_cache = k_cache,
                .v_cache = v_cache,
                .slots = slots.data(),
                .n_tokens = 4,
                .kv_dim = kKvDim});
  for (int i = 0; i < kKvDim; ++i) {
    EXPECT_EQ(k_storage[i], -1.0f);
    EXPECT_EQ(v_storage[i], -2.0f);
    EXPECT_EQ(k_storage[kKvDim + kCacheFloats + i], -1.0f);
    EXPECT_EQ(v_storage[kKvDim + kCacheFloats + i], -2.0f);
  }
  for (int slot = 0; slot < kBlocks * kBlockSize; ++slot) {
    int token = -1;
    for (int t = 0; t < 4; ++t) {
      if (slots[t] == slot) token = t;
    }
    for (int d = 0; d < kKvDim; ++d) {
      const float kc = k_cache[slot * kKvDim + d], vc = v_cache[slot * kKvDim + d];
      if (token < 0) {
        EXPECT_EQ(kc, -1.0f) << slot;
        EXPECT_EQ(vc, -2.0f) << slot;
      } else {
        EXPECT_EQ(kc, k[token * kKvDim + d]) << slot;
        EXPECT_EQ(vc, v[token * kKvDim + d]) << slot;
      }
    }
  }
}

TEST(KvWriteTest, F16CacheStoresRoundedRowsAtTheirSlots) {
  constexpr int kKvDim = 20;  // 2 full F16C lanes of 8 and a scalar tail of 4
  std::vector<float> k(2 * kKvDim), v(2 * kKvDim);
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (float& x : k) x = dist(rng);
  for (float& x : v) x = dist(rng);
  k[3] = 65504.0f * 4;  // beyond f16's range: infinity
  v[5] = 1e-6f;         // f16 subnormal
  std::vector<Fp16> k_cache(4 * kKvDim, kNan16), v_cache(4 * kKvDim, kNan16);
  const std::vector<int64_t> slots = {3, -1};
  ref::KvWrite({.k = k.data(),
                .v = v.data(),
                .k_cache = k_cache.data(),
                .v_cache = v_cache.data(),
                .cache_type = KvCacheType::kF16,
                .slots = slots.data(),
                .n_tokens = 2,
                .kv_dim = kKvDim});
  for (int slot = 0; slot < 4; ++slot) {
    for (int d = 0; d < kKvDim; ++d) {
      const Fp16 want_k = slot == 3 ? Fp32ToFp16(k[d]) : kNan16;
      const Fp16 want_v = slot == 3 ? Fp32ToFp16(v[d]) : kNan16;
      EXPECT_EQ(k_cache[slot * kKvDim + d], want_k) << slot << "," << d;
      EXPECT_EQ(v_cache[slot * kKvDim + d], want_v) << slot << "," << d;
    }
  }
  EXPECT_EQ(k_cache[3 * kKvDim + 3], 0x7c00);  // +inf
  EXPECT_NE(v_cache[3 * kKvDim + 5], 0);       // subnormal kept, not flushed
}

}  // namespace
}  // namespace troupe
