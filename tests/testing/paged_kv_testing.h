// A random paged KV cache for the attention GPU tests: sequences of given lengths whose blocks
// are shuffled page ids of a larger pool, as CSR lists (kv_indptr / kv_indices, for the CUDA
// kernels) and as padded block tables (for ref::PagedAttention), with the same bf16 values in a
// bf16 cache (device) and an f32 cache (reference). Every slot no sequence wrote (spare pages,
// the tail of partial last pages) holds NaN, so a kernel that reads one fails the comparison.
// Test-thread only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/decode_attention.h"
#include "kernels/ggml_types.h"
#include "tests/testing/cuda_testing.h"

namespace troupe::testing {

struct PagedKvHost {
  int block_size = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int num_blocks = 0;                 // pool size, spare pages included
  int max_blocks = 0;                 // columns of block_tables
  std::vector<int> seq_lens;          // [n_seqs] positions written
  std::vector<int32_t> kv_indptr;     // [n_seqs + 1]
  std::vector<int32_t> kv_indices;    // [kv_indptr.back()]
  std::vector<int32_t> block_tables;  // [n_seqs, max_blocks], -1 past the last block
  std::vector<Bf16> k, v;             // [num_blocks * block_size, n_kv_heads, head_dim]
  std::vector<float> k_f32, v_f32;    // the same values widened (NaN where unwritten)

  int n_seqs() const { return static_cast<int>(seq_lens.size()); }
  int64_t row_elems() const { return static_cast<int64_t>(n_kv_heads) * head_dim; }
};

// Sequence s gets ceil(seq_lens[s] / block_size) pages drawn without replacement from a pool
// with `spare_blocks` more pages than needed, in random order; K and V of its positions are
// N(0, 1) rounded to bf16.
inline PagedKvHost MakePagedKv(const std::vector<int>& seq_lens, int block_size, int n_kv_heads,
                               int head_dim, int spare_blocks, std::mt19937& rng) {
  PagedKvHost kv;
  kv.block_size = block_size;
  kv.n_kv_heads = n_kv_heads;
  kv.head_dim = head_dim;
  kv.seq_lens = seq_lens;
  int needed = 0;
  for (int len : seq_lens) {
    const int blocks = (len + block_size - 1) / block_size;
    needed += blocks;
    kv.max_blocks = std::max(kv.max_blocks, blocks);
  }
  kv.max_blocks = std::max(kv.max_blocks, 1);
  kv.num_blocks = needed + spare_blocks;
  std::vector<int32_t> pages(kv.num_blocks);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);

  const int64_t row = kv.row_elems();
  const size_t cache_elems = static_cast<size_t>(kv.num_blocks) * block_size * row;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  kv.k.assign(cache_elems, Fp32ToBf16(nan));
  kv.v.assign(cache_elems, Fp32ToBf16(nan));
  kv.k_f32.assign(cache_elems, nan);
  kv.v_f32.assign(cache_elems, nan);
  kv.block_tables.assign(static_cast<size_t>(kv.n_seqs()) * kv.max_blocks, -1);
  kv.kv_indptr.push_back(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int next_page = 0;
  for (int s = 0; s < kv.n_seqs(); ++s) {
    const int blocks = (seq_lens[s] + block_size - 1) / block_size;
    for (int b = 0; b < blocks; ++b) {
      const int32_t page = pages[next_page++];
      kv.kv_indices.push_back(page);
      kv.block_tables[static_cast<size_t>(s) * kv.max_blocks + b] = page;
    }
    kv.kv_indptr.push_back(static_cast<int32_t>(kv.kv_indices.size()));
    for (int pos = 0; pos < seq_lens[s]; ++pos) {
      const int64_t slot =
          static_cast<int64_t>(
              kv.block_tables[static_cast<size_t>(s) * kv.max_blocks + pos / block_size]) *
              block_size +
          pos % block_size;
      for (int64_t i = 0; i < row; ++i) {
        const size_t at = static_cast<size_t>(slot * row + i);
        kv.k[at] = Fp32ToBf16(normal(rng));
        kv.v[at] = Fp32ToBf16(normal(rng));
        kv.k_f32[at] = Bf16ToFp32(kv.k[at]);
        kv.v_f32[at] = Bf16ToFp32(kv.v[at]);
      }
    }
  }
  return kv;
}

// Makes the scores of a RisingQuery grow with the key's position: K of position p becomes
// (p / 256, p / 16 % 16, p % 16, 0, ...) (integers < 256, exact in bf16) and RisingQuery is
// (256, 16, 1, 0, ...), so q . k = p exactly and each key outweighs the one before it by e^scale.
// The last ~1/scale keys carry the output, each with >= 8% of the weight at head_dim <= 128:
// attending one key too many or too few changes the output far beyond the tolerance, which
// random scores (where one key of a thousand weighs ~0.1%) would hide. REQUIRES: head_dim >= 3,
// positions < 65536.
inline void MakeScoresRiseWithPosition(PagedKvHost& kv) {
  const int64_t row = kv.row_elems();
  for (int s = 0; s < kv.n_seqs(); ++s) {
    for (int pos = 0; pos < kv.seq_lens[s]; ++pos) {
      const int64_t slot =
          static_cast<int64_t>(
              kv.block_tables[static_cast<size_t>(s) * kv.max_blocks + pos / kv.block_size]) *
              kv.block_size +
          pos % kv.block_size;
      for (int64_t i = 0; i < row; ++i) {
        const int d = static_cast<int>(i % kv.head_dim);
        const int digit = d == 0 ? pos / 256 : d == 1 ? pos / 16 % 16 : d == 2 ? pos % 16 : 0;
        const float value = static_cast<float>(digit);
        kv.k[slot * row + i] = Fp32ToBf16(value);
        kv.k_f32[slot * row + i] = value;
      }
    }
  }
}

// One head's query for MakeScoresRiseWithPosition: [head_dim].
inline std::vector<float> RisingQuery(int head_dim) {
  std::vector<float> q(head_dim, 0.0f);
  q[0] = 256.0f;
  q[1] = 16.0f;
  q[2] = 1.0f;
  return q;
}

// The cache and block lists on the device; view() is the kernels' PagedKv over them.
struct PagedKvDevice {
  explicit PagedKvDevice(const PagedKvHost& host)
      : block_size(host.block_size),
        n_kv_heads(host.n_kv_heads),
        head_dim(host.head_dim),
        k(host.k),
        v(host.v),
        kv_indptr(host.kv_indptr),
        kv_indices(host.kv_indices) {}

  cuda::PagedKv view() const {
    return {.k_cache = k.get(),
            .v_cache = v.get(),
            .kv_indptr = kv_indptr.get(),
            .kv_indices = kv_indices.get(),
            .block_size = block_size,
            .n_kv_heads = n_kv_heads,
            .head_dim = head_dim};
  }

  int block_size, n_kv_heads, head_dim;
  DeviceBuffer<Bf16> k, v;
  DeviceBuffer<int32_t> kv_indptr, kv_indices;
};

// log sum_j exp(scale * q . k_j) over positions [0, len) of sequence `seq` for query head
// `head`, in double: the reference for the kernels' log-sum-exp outputs.
inline double ReferenceLse(const PagedKvHost& kv, const float* q, int head, int n_heads, int seq,
                           int len, float scale) {
  const int kvh = head / (n_heads / kv.n_kv_heads);
  std::vector<double> scores(len);
  double max_score = -INFINITY;
  for (int pos = 0; pos < len; ++pos) {
    const int64_t slot =
        static_cast<int64_t>(
            kv.block_tables[static_cast<size_t>(seq) * kv.max_blocks + pos / kv.block_size]) *
            kv.block_size +
        pos % kv.block_size;
    const float* k = kv.k_f32.data() + (slot * kv.n_kv_heads + kvh) * kv.head_dim;
    double dot = 0.0;
    for (int d = 0; d < kv.head_dim; ++d) dot += static_cast<double>(q[d]) * k[d];
    scores[pos] = dot * scale;
    max_score = std::max(max_score, scores[pos]);
  }
  double sum = 0.0;
  for (double s : scores) sum += std::exp(s - max_score);
  return len > 0 ? max_score + std::log(sum) : -INFINITY;
}

}  // namespace troupe::testing
