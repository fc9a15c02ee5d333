// Reference paged KV write and causal attention; also the CPU backend's implementation.
// Stateless: each call allocates its own scratch, so disjoint token ranges may run on
// different threads at once (they write disjoint rows of out / the caches).
#include "kernels/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/check.h"
#include "kernels/fp16_rows.h"

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
  std::vector<float> q;    // [group, head_dim]: f16 cache only, the queries rounded to f16
  std::vector<float> kv;   // [2, block_size, head_dim]: f16 cache only, one block's K and V
};

// Offset, in elements, of the kv head `kvh` of block b's first position, after checking the
// table entry. Position j of the block is at that offset + j * row_stride.
int64_t BlockBase(const PagedAttentionArgs& a, const int32_t* table, int b, int kvh, int n_keys) {
  const int32_t block = table[b];
  TROUPE_CHECK_MSG(block >= 0, "block table entry %d is -1 below position %d", b, n_keys - 1);
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * a.head_dim;
  return static_cast<int64_t>(block) * a.block_size * row_stride +
         static_cast<int64_t>(kvh) * a.head_dim;
}

// Writes acc / l of each head of the group into out.
void Normalize(const PagedAttentionArgs& a, int64_t t, int kvh, const Scratch& s) {
  const int group = a.n_heads / a.n_kv_heads;
  const int hd = a.head_dim;
  float* out = a.out + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;
  for (int g = 0; g < group; ++g) {
    const float inv_l = 1.0f / s.l[g];
    for (int d = 0; d < hd; ++d) out[g * hd + d] = s.acc[g * hd + d] * inv_l;
  }
}

// f32 cache. Attends the query heads [kvh * group, (kvh + 1) * group) of token t over
// positions [0, n_keys) of its sequence, whose blocks are table[0, ceil(n_keys / block_size)).
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
    const int n = std::min(bs, n_keys - b * bs);
    const int64_t base = BlockBase(a, table, b, kvh, n_keys);
    const float* k = static_cast<const float*>(a.k_cache) + base;
    const float* v = static_cast<const float*>(a.v_cache) + base;
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
  Normalize(a, t, kvh, s);
}

// f16 cache, in the arithmetic of llama.cpp's CPU flash attention (one query row against the
// keys in order): the query is rounded to f16; per key, the score is a dot product of f16
// values; when it raises the running max the accumulator is rescaled, and after adding
// exp(score - max) * v the accumulator is rounded to f16, as llama.cpp keeps it in f16.
void AttendKvHeadF16(const PagedAttentionArgs& a, int64_t t, int kvh, const int32_t* table,
                     int n_keys, Scratch& s) {
  const int group = a.n_heads / a.n_kv_heads;
  const int hd = a.head_dim;
  const int bs = a.block_size;
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  const float* q = a.q + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;
  std::copy_n(q, group * hd, s.q.begin());
  RoundRowToFp16(s.q.data(), group * hd);
  std::fill(s.m.begin(), s.m.end(), -std::numeric_limits<float>::infinity());
  std::fill(s.l.begin(), s.l.end(), 0.0f);
  std::fill(s.acc.begin(), s.acc.end(), 0.0f);
  float* kf = s.kv.data();  // [block_size, hd]
  float* vf = kf + static_cast<int64_t>(bs) * hd;
  for (int b = 0; b * bs < n_keys; ++b) {
    const int n = std::min(bs, n_keys - b * bs);
    const int64_t base = BlockBase(a, table, b, kvh, n_keys);
    const Fp16* k = static_cast<const Fp16*>(a.k_cache) + base;
    const Fp16* v = static_cast<const Fp16*>(a.v_cache) + base;
    for (int j = 0; j < n; ++j) {
      Fp16RowToFp32(k + j * row_stride, kf + j * hd, hd);
      Fp16RowToFp32(v + j * row_stride, vf + j * hd, hd);
    }
    for (int g = 0; g < group; ++g) {
      float* acc = s.acc.data() + g * hd;
      float m = s.m[g];
      float l = s.l[g];
      for (int j = 0; j < n; ++j) {
        const float score = Dot(s.q.data() + g * hd, kf + j * hd, hd) * a.scale;
        float ms = 1.0f;  // rescales the accumulator and sum when the max moves
        float vs = 1.0f;  // exp(score - max)
        if (score > m) {
          ms = std::exp(m - score);  // 0 on the first key
          m = score;
          for (int d = 0; d < hd; ++d) acc[d] *= ms;
          RoundRowToFp16(acc, hd);
        } else {
          vs = std::exp(score - m);
        }
        const float* vj = vf + j * hd;
        for (int d = 0; d < hd; ++d) acc[d] += vj[d] * vs;
        RoundRowToFp16(acc, hd);
        l = l * ms + vs;
      }
      s.m[g] = m;
      s.l[g] = l;
    }
  }
  Normalize(a, t, kvh, s);
}

}  // namespace

void KvWrite(const KvWriteArgs& args) {
  const int64_t dim = args.kv_dim;
  for (int64_t t = 0; t < args.n_tokens; ++t) {
    const int64_t slot = args.slots[t];
    if (slot < 0) continue;  // padding: cache untouched
    if (args.cache_type == KvCacheType::kF16) {
      Fp32RowToFp16(args.k + t * dim, static_cast<Fp16*>(args.k_cache) + slot * dim, args.kv_dim);
      Fp32RowToFp16(args.v + t * dim, static_cast<Fp16*>(args.v_cache) + slot * dim, args.kv_dim);
    } else {
      std::memcpy(static_cast<float*>(args.k_cache) + slot * dim, args.k + t * dim,
                  dim * sizeof(float));
      std::memcpy(static_cast<float*>(args.v_cache) + slot * dim, args.v + t * dim,
                  dim * sizeof(float));
    }
  }
}

// Design: for each token and kv head, the query heads of that GQA group walk the sequence's
// blocks together (so each K/V row is loaded once per group), keeping per head a running max
// m, a running sum l of exp(score - m) and an accumulator of exp(score - m) * V, rescaled by
// exp(m_old - m_new) once per block (f32 cache) or whenever the max moves (f16 cache, which
// also converts each block's K/V rows to f32 once for the group). Output = acc / l. A token with token_seq -1 is padding:
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
  const bool f16 = args.cache_type == KvCacheType::kF16;
  if (f16) {
    s.q.resize(static_cast<size_t>(group) * args.head_dim);
    s.kv.resize(2 * static_cast<size_t>(args.block_size) * args.head_dim);
  }
  for (int64_t t = 0; t < args.n_tokens; ++t) {
    const int32_t seq = args.token_seq[t];
    if (seq < 0) continue;
    const int32_t pos = args.token_pos[t];
    TROUPE_CHECK_MSG(pos >= 0 && pos / args.block_size < args.max_blocks_per_seq,
                     "token %ld: pos=%d exceeds %d blocks of %d", static_cast<long>(t), pos,
                     args.max_blocks_per_seq, args.block_size);
    const int32_t* table = args.block_tables + static_cast<int64_t>(seq) * args.max_blocks_per_seq;
    const int kv_end = args.kv_head_end < 0 ? args.n_kv_heads : args.kv_head_end;
    for (int kvh = args.kv_head_begin; kvh < kv_end; ++kvh) {
      if (f16) {
        AttendKvHeadF16(args, t, kvh, table, pos + 1, s);
      } else {
        AttendKvHead(args, t, kvh, table, pos + 1, s);
      }
    }
  }
}

}  // namespace troupe::ref
