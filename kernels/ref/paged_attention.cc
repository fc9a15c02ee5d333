// Reference paged KV write and causal attention; also the CPU backend's implementation.
// Stateless: each call allocates its own scratch, so disjoint token ranges may run on
// different threads at once (they write disjoint rows of out / the caches).
#include "kernels/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/common/check.h"

namespace troupe::ref {

namespace {

// Float dot product in kLanes independent partial sums: vectorizes without fast-math.
float Dot(const float* a, const float* b, int n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += a[i + j] * b[i + j];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

// Per-call scratch for one (token, kv head): the `group` query heads that share the kv head.
struct Scratch {
  std::vector<float> p;    // [group, block_size]: scores, then exp(score - running max)
  std::vector<float> acc;  // [group, head_dim]: unnormalized sum of p * V
  std::vector<float> m;    // [group]: running max of scores
  std::vector<float> l;    // [group]: running sum of exp(score - m)
};

// Attends the query heads [kvh * group, (kvh + 1) * group) of token t over positions
// [0, n_keys) of its sequence, whose blocks are table[0, ceil(n_keys / block_size)).
void AttendKvHead(const PagedAttentionArgs& a, int64_t t, int kvh, const int32_t* table, int n_keys,
                  Scratch& s) {
  const int group = a.n_heads / a.n_kv_heads;
  const int hd = a.head_dim;
  const int bs = a.block_size;
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * hd;  // floats per position
  const float* q = a.q + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;  // [group, hd]
  std::fill(s.m.begin(), s.m.end(), -std::numeric_limits<float>::infinity());
  std::fill(s.l.begin(), s.l.end(), 0.0f);
  std::fill(s.acc.begin(), s.acc.end(), 0.0f);
  for (int b = 0; b * bs < n_keys; ++b) {
    const int32_t block = table[b];
    TROUPE_CHECK_MSG(block >= 0, "block table entry %d is -1 below position %d", b, n_keys - 1);
    const int n = std::min(bs, n_keys - b * bs);
    const int64_t base = static_cast<int64_t>(block) * bs * row_stride + kvh * hd;
    const float* k = a.k_cache + base;  // position j of the block at k + j * row_stride
    const float* v = a.v_cache + base;
    for (int g = 0; g < group; ++g) {
      float* p = s.p.data() + g * bs;
      // 1) Scores of this block and their max.
      float block_max = -std::numeric_limits<float>::infinity();
      for (int j = 0; j < n; ++j) {
        p[j] = Dot(q + g * hd, k + j * row_stride, hd) * a.scale;
        block_max = std::max(block_max, p[j]);
      }
      // 2) Online softmax: move the running max, rescale the old sum and accumulator once.
      const float new_m = std::max(s.m[g], block_max);
      const float correction = std::exp(s.m[g] - new_m);  // exp(-inf) = 0 on the first block
      float l = s.l[g] * correction;
      for (int j = 0; j < n; ++j) {
        p[j] = std::exp(p[j] - new_m);
        l += p[j];
      }
      s.m[g] = new_m;
      s.l[g] = l;
      float* acc = s.acc.data() + g * hd;
      for (int d = 0; d < hd; ++d) acc[d] *= correction;
      // 3) acc += p * V.
      for (int j = 0; j < n; ++j) {
        const float* vj = v + j * row_stride;
        const float pj = p[j];
        for (int d = 0; d < hd; ++d) acc[d] += pj * vj[d];
      }
    }
  }
  // 4) Normalize into out.
  float* out = a.out + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;
  for (int g = 0; g < group; ++g) {
    const float inv_l = 1.0f / s.l[g];
    for (int d = 0; d < hd; ++d) out[g * hd + d] = s.acc[g * hd + d] * inv_l;
  }
}

}  // namespace

void KvWrite(const KvWriteArgs& args) {
  const size_t row_bytes = static_cast<size_t>(args.kv_dim) * sizeof(float);
  for (int64_t t = 0; t < args.n_tokens; ++t) {
    const int64_t slot = args.slots[t];
    if (slot < 0) continue;  // padding: cache untouched
    std::memcpy(args.k_cache + slot * args.kv_dim, args.k + t * args.kv_dim, row_bytes);
    std::memcpy(args.v_cache + slot * args.kv_dim, args.v + t * args.kv_dim, row_bytes);
  }
}

// Design: for each token and kv head, the query heads of that GQA group walk the sequence's
// blocks together (so each K/V row is loaded once per group), keeping per head a running max
// m, a running sum l of exp(score - m) and an accumulator of exp(score - m) * V, rescaled by
// exp(m_old - m_new) once per block. Output = acc / l. A token with token_seq -1 is padding:
// skipped, its out rows untouched.
void PagedAttention(const PagedAttentionArgs& args) {
  TROUPE_CHECK_MSG(args.n_kv_heads > 0 && args.n_heads % args.n_kv_heads == 0,
                   "n_heads=%d n_kv_heads=%d", args.n_heads, args.n_kv_heads);
  TROUPE_CHECK(args.head_dim > 0 && args.block_size > 0);
  const int group = args.n_heads / args.n_kv_heads;
  Scratch s;
  s.p.resize(static_cast<size_t>(group) * args.block_size);
  s.acc.resize(static_cast<size_t>(group) * args.head_dim);
  s.m.resize(group);
  s.l.resize(group);
  for (int64_t t = 0; t < args.n_tokens; ++t) {
    const int32_t seq = args.token_seq[t];
    if (seq < 0) continue;
    const int32_t pos = args.token_pos[t];
    TROUPE_CHECK_MSG(pos >= 0 && pos / args.block_size < args.max_blocks_per_seq,
                     "token %ld: pos=%d exceeds %d blocks of %d", static_cast<long>(t), pos,
                     args.max_blocks_per_seq, args.block_size);
    const int32_t* table = args.block_tables + static_cast<int64_t>(seq) * args.max_blocks_per_seq;
    const int kv_end = args.kv_head_end < 0 ? args.n_kv_heads : args.kv_head_end;
    for (int kvh = args.kv_head_begin; kvh < kv_end; ++kvh) AttendKvHead(args, t, kvh, table, pos + 1, s);
  }
}

}  // namespace troupe::ref
