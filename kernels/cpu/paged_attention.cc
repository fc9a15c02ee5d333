// Tiled paged attention for the CPU backend (see paged_attention.h).
//
// Design: a tile holds up to 16 query rows that read the same K/V (one sequence, one kv head):
// in a prefill, consecutive tokens times the query heads of the group. Q and the running sums
// are stored transposed, [head_dim][16 lanes], so every per-key operation is one 16-lane
// vector op per head dimension and no horizontal sums are needed:
//   score  = sum_d qT[d] * broadcast(k[d])          (8 independent chains over d)
//   if a lane's score raises its max m: accT[d] *= exp(m_old - m_new), l *= the same
//   accT[d] += broadcast(v[d]) * exp(score - m)      (masked to the lanes that see this key)
// with accT rounded to f16 after each update for an f16 cache, as llama.cpp and the reference
// do. Keys are walked once per tile through the block table; each K/V row is converted from f16
// once per tile. A lane whose token is at position p sees keys [0, p]; the others are masked.
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/check.h"
#include "kernels/fp16_rows.h"

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics headers trip its own -W(maybe-)uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#endif

namespace troupe::cpu {

std::vector<AttentionTile> PlanAttentionTiles(const PagedAttentionArgs& args) {
  const int group = args.n_heads / args.n_kv_heads;
  std::vector<AttentionTile> tiles;
  for (int64_t t = 0; t < args.n_tokens;) {
    const int32_t seq = args.token_seq[t];
    if (seq < 0) {  // padding
      ++t;
      continue;
    }
    int64_t end = t + 1;
    while (end < args.n_tokens && args.token_seq[end] == seq) ++end;
    const int64_t rows = (end - t) * group;
    for (int64_t r = 0; r < rows; r += AttentionTile::kTileRows) {
      for (int kvh = 0; kvh < args.n_kv_heads; ++kvh) {
        tiles.push_back({.token_begin = t,
                         .row_begin = static_cast<int32_t>(r),
                         .row_end = static_cast<int32_t>(std::min<int64_t>(rows, r + AttentionTile::kTileRows)),
                         .kv_head = kvh});
      }
    }
    t = end;
  }
  return tiles;
}

#if defined(__AVX512F__)

bool HasTiledAttention() { return true; }

namespace internal {
namespace {

constexpr int kLanes = AttentionTile::kTileRows;
static_assert(kLanes == 16, "one tile row per AVX-512 float lane");

// exp(x) to about 1 ulp: x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for e^r
// (Cephes' expf coefficients), then scaled by 2^n. Inputs below -104 give 0, -inf included.
[[gnu::always_inline]] inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

float* AlignTo64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

[[gnu::always_inline]] inline __m512 RoundToFp16(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// sum_d qT[d] * k[d] per lane, in 8 chains (d mod 8) summed pairwise.
[[gnu::always_inline]] inline __m512 Scores(const float* qT, const float* k, int hd) {
  __m512 s[8];
  for (__m512& x : s) x = _mm512_setzero_ps();
  int d = 0;
  for (; d + 8 <= hd; d += 8) {
    for (int i = 0; i < 8; ++i) {
      s[i] = _mm512_fmadd_ps(_mm512_load_ps(qT + (d + i) * kLanes), _mm512_set1_ps(k[d + i]), s[i]);
    }
  }
  for (; d < hd; ++d) s[0] = _mm512_fmadd_ps(_mm512_load_ps(qT + d * kLanes), _mm512_set1_ps(k[d]), s[0]);
  return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])),
                       _mm512_add_ps(_mm512_add_ps(s[4], s[5]), _mm512_add_ps(s[6], s[7])));
}

// Token t's position, checked against its block table's length.
int32_t CheckedPosition(const PagedAttentionArgs& a, int64_t t) {
  const int32_t pos = a.token_pos[t];
  TROUPE_CHECK_MSG(pos >= 0 && pos / a.block_size < a.max_blocks_per_seq,
                   "token %ld: pos=%d exceeds %d blocks of %d", static_cast<long>(t), pos,
                   a.max_blocks_per_seq, a.block_size);
  return pos;
}

// For the 16 scores s[0, nk) of one query head, in key order: advances its running max m and
// returns which keys raised it, with ms[i] = exp(max before key i - s[i]) (the rescale where
// raised) and vs[i] = exp(s[i] - max after key i), both 16 at a time.
uint32_t RunningMaxAndWeights(const float* s, int nk, float& m, float* ms, float* vs) {
  alignas(64) float m_before[kLanes] = {}, m_after[kLanes] = {};
  uint32_t raised = 0;
  for (int i = 0; i < nk; ++i) {
    m_before[i] = m;
    if (s[i] > m) {
      m = s[i];
      raised |= 1u << i;
    }
    m_after[i] = m;
  }
  const __m512 sv = _mm512_load_ps(s);
  _mm512_store_ps(ms, Exp(_mm512_sub_ps(_mm512_load_ps(m_before), sv)));
  _mm512_store_ps(vs, Exp(_mm512_sub_ps(sv, _mm512_load_ps(m_after))));
  return raised;
}

template <bool kF16>
void AttendTileImpl(const PagedAttentionArgs& a, const AttentionTile& tile) {
  const int group = a.n_heads / a.n_kv_heads;
  const int hd = a.head_dim;
  const int bs = a.block_size;
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * hd;  // elements per position
  const int lanes = tile.row_end - tile.row_begin;
  const int32_t seq = a.token_seq[tile.token_begin];
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;

  // [hd][16] transposed queries and sums, then one K and one V row as f32.
  thread_local std::vector<float> scratch;
  scratch.resize(2 * static_cast<size_t>(hd) * kLanes + 2 * static_cast<size_t>(hd) + kLanes);
  float* qT = AlignTo64(scratch.data());
  float* accT = qT + static_cast<size_t>(hd) * kLanes;
  float* kbuf = accT + static_cast<size_t>(hd) * kLanes;
  float* vbuf = kbuf + hd;
  std::fill(qT, kbuf, 0.0f);

  alignas(64) int32_t limit[kLanes] = {};  // keys [0, limit) visible to the lane
  int max_keys = 0;
  for (int l = 0; l < lanes; ++l) {
    const int row = tile.row_begin + l;
    const int64_t t = tile.token_begin + row / group;
    const int head = tile.kv_head * group + row % group;
    const int32_t pos = CheckedPosition(a, t);
    const float* q = a.q + (t * a.n_heads + head) * hd;
    for (int d = 0; d < hd; ++d) qT[d * kLanes + l] = q[d];
    limit[l] = pos + 1;
    max_keys = std::max(max_keys, pos + 1);
  }
  if constexpr (kF16) {
    for (int d = 0; d < hd; ++d) _mm512_store_ps(qT + d * kLanes, RoundToFp16(_mm512_load_ps(qT + d * kLanes)));
  }
  const __m512i limit_v = _mm512_load_si512(limit);
  const __m512 scale = _mm512_set1_ps(a.scale);
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 sum = _mm512_setzero_ps();

  int64_t block_base = 0;
  for (int j = 0; j < max_keys; ++j) {
    if (j % bs == 0) {
      const int32_t block = table[j / bs];
      TROUPE_CHECK_MSG(block >= 0, "block table entry %d is -1 below position %d", j / bs, max_keys - 1);
      block_base = static_cast<int64_t>(block) * bs * row_stride + static_cast<int64_t>(tile.kv_head) * hd;
    }
    const int64_t offset = block_base + static_cast<int64_t>(j % bs) * row_stride;
    const float* k;
    const float* v;
    if constexpr (kF16) {
      Fp16RowToFp32(static_cast<const Fp16*>(a.k_cache) + offset, kbuf, hd);
      Fp16RowToFp32(static_cast<const Fp16*>(a.v_cache) + offset, vbuf, hd);
      k = kbuf;
      v = vbuf;
    } else {
      k = static_cast<const float*>(a.k_cache) + offset;
      v = static_cast<const float*>(a.v_cache) + offset;
    }
    const __mmask16 active = _mm512_cmpgt_epi32_mask(limit_v, _mm512_set1_epi32(j));
    const __m512 s = _mm512_mul_ps(Scores(qT, k, hd), scale);
    const __mmask16 raised = _mm512_mask_cmp_ps_mask(active, s, m, _CMP_GT_OQ);
    if (raised != 0) {
      // exp(m_old - s) on the raised lanes (0 when m_old is -inf), 1 elsewhere.
      const __m512 ms = _mm512_mask_blend_ps(raised, _mm512_set1_ps(1.0f), Exp(_mm512_sub_ps(m, s)));
      for (int d = 0; d < hd; ++d) {
        __m512 acc = _mm512_mul_ps(_mm512_load_ps(accT + d * kLanes), ms);
        if constexpr (kF16) acc = RoundToFp16(acc);
        _mm512_store_ps(accT + d * kLanes, acc);
      }
      sum = _mm512_mul_ps(sum, ms);
      m = _mm512_mask_mov_ps(m, raised, s);
    }
    const __m512 vs = Exp(_mm512_sub_ps(s, m));  // exactly 1 on the raised lanes
    for (int d = 0; d < hd; ++d) {
      __m512 acc = _mm512_mask3_fmadd_ps(_mm512_set1_ps(v[d]), vs, _mm512_load_ps(accT + d * kLanes), active);
      if constexpr (kF16) acc = RoundToFp16(acc);
      _mm512_store_ps(accT + d * kLanes, acc);
    }
    sum = _mm512_mask_add_ps(sum, active, sum, vs);
  }

  alignas(64) float l_lanes[kLanes];
  _mm512_store_ps(l_lanes, sum);
  for (int l = 0; l < lanes; ++l) {
    const int row = tile.row_begin + l;
    const int64_t t = tile.token_begin + row / group;
    const int head = tile.kv_head * group + row % group;
    float* out = a.out + (t * a.n_heads + head) * hd;
    const float inv_l = 1.0f / l_lanes[l];
    for (int d = 0; d < hd; ++d) out[d] = accT[d * kLanes + l] * inv_l;
  }
}

// One token's query heads of one kv head, the layout for decodes, where a tile would have
// only `group` busy lanes: here the vectors run along head_dim, and per block of 16 keys the
// running maxima and both exp() arguments are found first, so exp() still runs 16 at a time.
// Every row's operations are the tile lane's, in the same order, so results are bit-identical.
template <bool kF16>
void AttendToken(const PagedAttentionArgs& a, int64_t t, int kvh) {
  const int group = a.n_heads / a.n_kv_heads;
  const int hd = a.head_dim;
  const int bs = a.block_size;
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  const int32_t* table = a.block_tables + static_cast<int64_t>(a.token_seq[t]) * a.max_blocks_per_seq;
  const int32_t pos = CheckedPosition(a, t);
  const int n_keys = pos + 1;
  const size_t qsize = static_cast<size_t>(group) * hd;
  thread_local std::vector<float> scratch;
  scratch.resize(2 * qsize + 2 * static_cast<size_t>(kLanes) * hd + 2 * group + kLanes);
  float* q = AlignTo64(scratch.data());
  float* acc = q + qsize;
  float* kbuf = acc + qsize;                         // [16, hd]: a chunk's keys as f32
  float* vbuf = kbuf + static_cast<size_t>(kLanes) * hd;
  float* m = vbuf + static_cast<size_t>(kLanes) * hd;  // [group] running max
  float* l = m + group;                                // [group] running sum
  const float* q_src = a.q + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;
  std::copy_n(q_src, qsize, q);
  if constexpr (kF16) {
    for (size_t i = 0; i < qsize; ++i) q[i] = _mm512_cvtss_f32(RoundToFp16(_mm512_set1_ps(q[i])));
  }
  std::fill(acc, acc + qsize, 0.0f);
  std::fill(m, m + group, -std::numeric_limits<float>::infinity());
  std::fill(l, l + group, 0.0f);
  const int full = hd / kLanes * kLanes;
  const __mmask16 tail = static_cast<__mmask16>((1u << (hd - full)) - 1);

  const float* kp[kLanes];
  const float* vp[kLanes];
  for (int j0 = 0; j0 < n_keys; j0 += kLanes) {
    const int nk = std::min(kLanes, n_keys - j0);
    for (int i = 0; i < nk; ++i) {
      const int j = j0 + i;
      const int32_t block = table[j / bs];
      TROUPE_CHECK_MSG(block >= 0, "block table entry %d is -1 below position %d", j / bs, pos);
      const int64_t offset = (static_cast<int64_t>(block) * bs + j % bs) * row_stride +
                             static_cast<int64_t>(kvh) * hd;
      if constexpr (kF16) {
        Fp16RowToFp32(static_cast<const Fp16*>(a.k_cache) + offset, kbuf + i * hd, hd);
        Fp16RowToFp32(static_cast<const Fp16*>(a.v_cache) + offset, vbuf + i * hd, hd);
        kp[i] = kbuf + i * hd;
        vp[i] = vbuf + i * hd;
      } else {
        kp[i] = static_cast<const float*>(a.k_cache) + offset;
        vp[i] = static_cast<const float*>(a.v_cache) + offset;
      }
    }
    for (int g = 0; g < group; ++g) {
      const float* qg = q + g * hd;
      float* ag = acc + g * hd;
      // Scores in the tile's order: 8 chains over d (d mod 8), summed pairwise, then scaled.
      alignas(64) float s[kLanes] = {};
      for (int i = 0; i < nk; ++i) {
        __m256 c = _mm256_setzero_ps();
        int d = 0;
        for (; d + 8 <= hd; d += 8) c = _mm256_fmadd_ps(_mm256_loadu_ps(qg + d), _mm256_loadu_ps(kp[i] + d), c);
        alignas(32) float ch[8];
        _mm256_store_ps(ch, c);
        for (; d < hd; ++d) ch[0] = std::fma(qg[d], kp[i][d], ch[0]);
        s[i] = (((ch[0] + ch[1]) + (ch[2] + ch[3])) + ((ch[4] + ch[5]) + (ch[6] + ch[7]))) * a.scale;
      }
      // Running max before and after each key, then both exp() arguments at once.
      alignas(64) float ms[kLanes], vs[kLanes];
      const uint32_t raised = RunningMaxAndWeights(s, nk, m[g], ms, vs);
      float lg = l[g];
      for (int i = 0; i < nk; ++i) {
        if (raised & (1u << i)) {
          const __m512 scale_by = _mm512_set1_ps(ms[i]);
          for (int d = 0; d < hd; d += kLanes) {
            const __mmask16 mask = d < full ? static_cast<__mmask16>(0xffff) : tail;
            __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, ag + d), scale_by);
            if constexpr (kF16) x = RoundToFp16(x);
            _mm512_mask_storeu_ps(ag + d, mask, x);
          }
          lg *= ms[i];
        }
        const __m512 w = _mm512_set1_ps(vs[i]);
        for (int d = 0; d < hd; d += kLanes) {
          const __mmask16 mask = d < full ? static_cast<__mmask16>(0xffff) : tail;
          __m512 x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, vp[i] + d), w, _mm512_maskz_loadu_ps(mask, ag + d));
          if constexpr (kF16) x = RoundToFp16(x);
          _mm512_mask_storeu_ps(ag + d, mask, x);
        }
        lg += vs[i];
      }
      l[g] = lg;
    }
  }
  float* out = a.out + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * hd;
  for (int g = 0; g < group; ++g) {
    const float inv_l = 1.0f / l[g];
    for (int d = 0; d < hd; ++d) out[g * hd + d] = acc[g * hd + d] * inv_l;
  }
}

// r[0..16) rows of 16 floats -> r[c] = column c. Unpack pairs of rows, then quads within
// 128-bit lanes, then the 4 x 4 grid of lanes.
[[gnu::always_inline]] inline void Transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Now r[4i + k], lane L = column 4L + k of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 p0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44);
    const __m512 p1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
    const __m512 p2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44);
    const __m512 p3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
    t[k] = _mm512_shuffle_f32x4(p0, p2, 0x88);
    t[4 + k] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
    t[8 + k] = _mm512_shuffle_f32x4(p1, p3, 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
  }
  for (int c = 0; c < 16; ++c) r[c] = t[c];  // t[4L + k] is column 4L + k
}

// AttendToken for head_dim = 16 * kVecs (64, 128): the same arithmetic, faster. Per 16 keys
// the K rows are transposed to [head_dim][16 keys], so the scores of all 16 keys are kVecs * 16
// lane-wise FMAs in the tile's 8 chains (no horizontal sums), and each head's running sum stays
// in kVecs registers across the keys.
template <bool kF16, int kVecs>
void AttendTokenWide(const PagedAttentionArgs& a, int64_t t, int kvh) {
  constexpr int kHd = 16 * kVecs;
  const int group = a.n_heads / a.n_kv_heads;
  const int bs = a.block_size;
  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * kHd;
  const int32_t* table = a.block_tables + static_cast<int64_t>(a.token_seq[t]) * a.max_blocks_per_seq;
  const int32_t pos = CheckedPosition(a, t);
  const int n_keys = pos + 1;
  const size_t qsize = static_cast<size_t>(group) * kHd;
  thread_local std::vector<float> scratch;
  scratch.resize(2 * qsize + 2 * static_cast<size_t>(kLanes) * kHd + kLanes);
  float* q = AlignTo64(scratch.data());
  float* acc = q + qsize;
  float* kT = acc + qsize;                               // [kHd][16]: a chunk's keys, transposed
  float* vbuf = kT + static_cast<size_t>(kLanes) * kHd;  // [16][kHd]
  const float* q_src = a.q + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * kHd;
  for (size_t i = 0; i < qsize; i += kLanes) {
    __m512 x = _mm512_loadu_ps(q_src + i);
    if constexpr (kF16) x = RoundToFp16(x);
    _mm512_store_ps(q + i, x);
  }
  std::fill(acc, acc + qsize, 0.0f);
  float m[64], l[64];  // per query head of the group
  TROUPE_CHECK(group <= 64);
  std::fill(m, m + group, -std::numeric_limits<float>::infinity());
  std::fill(l, l + group, 0.0f);

  for (int j0 = 0; j0 < n_keys; j0 += kLanes) {
    const int nk = std::min(kLanes, n_keys - j0);
    __m512 rows[kVecs][kLanes];  // [16-dim slice][key]
    for (int i = 0; i < kLanes; ++i) {
      if (i >= nk) {
        for (int c = 0; c < kVecs; ++c) rows[c][i] = _mm512_setzero_ps();
        continue;
      }
      const int j = j0 + i;
      const int32_t block = table[j / bs];
      TROUPE_CHECK_MSG(block >= 0, "block table entry %d is -1 below position %d", j / bs, pos);
      const int64_t offset = (static_cast<int64_t>(block) * bs + j % bs) * row_stride +
                             static_cast<int64_t>(kvh) * kHd;
      for (int c = 0; c < kVecs; ++c) {
        if constexpr (kF16) {
          const Fp16* k = static_cast<const Fp16*>(a.k_cache) + offset + c * 16;
          const Fp16* v = static_cast<const Fp16*>(a.v_cache) + offset + c * 16;
          rows[c][i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k)));
          _mm512_store_ps(vbuf + i * kHd + c * 16,
                          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v))));
        } else {
          rows[c][i] = _mm512_loadu_ps(static_cast<const float*>(a.k_cache) + offset + c * 16);
          _mm512_store_ps(vbuf + i * kHd + c * 16,
                          _mm512_loadu_ps(static_cast<const float*>(a.v_cache) + offset + c * 16));
        }
      }
    }
    for (int c = 0; c < kVecs; ++c) {
      Transpose16x16(rows[c]);
      for (int d = 0; d < 16; ++d) _mm512_store_ps(kT + (c * 16 + d) * kLanes, rows[c][d]);
    }
    for (int g = 0; g < group; ++g) {
      const float* qg = q + g * kHd;
      __m512 ch[8];
      for (__m512& x : ch) x = _mm512_setzero_ps();
      for (int d = 0; d < kHd; d += 8) {
        for (int i = 0; i < 8; ++i) {
          ch[i] = _mm512_fmadd_ps(_mm512_set1_ps(qg[d + i]), _mm512_load_ps(kT + (d + i) * kLanes), ch[i]);
        }
      }
      const __m512 sv = _mm512_mul_ps(
          _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(ch[0], ch[1]), _mm512_add_ps(ch[2], ch[3])),
                        _mm512_add_ps(_mm512_add_ps(ch[4], ch[5]), _mm512_add_ps(ch[6], ch[7]))),
          _mm512_set1_ps(a.scale));
      alignas(64) float s[kLanes];
      _mm512_store_ps(s, sv);
      alignas(64) float ms[kLanes], vs[kLanes];
      const uint32_t raised = RunningMaxAndWeights(s, nk, m[g], ms, vs);
      __m512 ag[kVecs];
      for (int c = 0; c < kVecs; ++c) ag[c] = _mm512_load_ps(acc + g * kHd + c * 16);
      float lg = l[g];
      for (int i = 0; i < nk; ++i) {
        if (raised & (1u << i)) {
          const __m512 scale_by = _mm512_set1_ps(ms[i]);
          for (int c = 0; c < kVecs; ++c) {
            ag[c] = _mm512_mul_ps(ag[c], scale_by);
            if constexpr (kF16) ag[c] = RoundToFp16(ag[c]);
          }
          lg *= ms[i];
        }
        const __m512 w = _mm512_set1_ps(vs[i]);
        for (int c = 0; c < kVecs; ++c) {
          ag[c] = _mm512_fmadd_ps(_mm512_load_ps(vbuf + i * kHd + c * 16), w, ag[c]);
          if constexpr (kF16) ag[c] = RoundToFp16(ag[c]);
        }
        lg += vs[i];
      }
      for (int c = 0; c < kVecs; ++c) _mm512_store_ps(acc + g * kHd + c * 16, ag[c]);
      l[g] = lg;
    }
  }
  float* out = a.out + (t * a.n_heads + static_cast<int64_t>(kvh) * group) * kHd;
  for (int g = 0; g < group; ++g) {
    const float inv_l = 1.0f / l[g];
    for (int d = 0; d < kHd; ++d) out[g * kHd + d] = acc[g * kHd + d] * inv_l;
  }
}

}  // namespace

void AttendTile(const PagedAttentionArgs& args, const AttentionTile& tile) {
  const int group = args.n_heads / args.n_kv_heads;
  const bool one_token = tile.row_begin % group == 0 && tile.row_end - tile.row_begin == group;
  const bool f16 = args.cache_type == KvCacheType::kF16;
  if (one_token) {
    const int64_t t = tile.token_begin + tile.row_begin / group;
    if (args.head_dim == 64) {
      f16 ? AttendTokenWide<true, 4>(args, t, tile.kv_head) : AttendTokenWide<false, 4>(args, t, tile.kv_head);
    } else if (args.head_dim == 128) {
      f16 ? AttendTokenWide<true, 8>(args, t, tile.kv_head) : AttendTokenWide<false, 8>(args, t, tile.kv_head);
    } else {
      f16 ? AttendToken<true>(args, t, tile.kv_head) : AttendToken<false>(args, t, tile.kv_head);
    }
  } else {
    f16 ? AttendTileImpl<true>(args, tile) : AttendTileImpl<false>(args, tile);
  }
}

void AttendTileLanes(const PagedAttentionArgs& args, const AttentionTile& tile) {
  args.cache_type == KvCacheType::kF16 ? AttendTileImpl<true>(args, tile)
                                       : AttendTileImpl<false>(args, tile);
}

}  // namespace internal

void PagedAttention(const PagedAttentionArgs& args, ThreadPool& pool) {
  TROUPE_CHECK_MSG(args.n_kv_heads > 0 && args.n_heads % args.n_kv_heads == 0,
                   "n_heads=%d n_kv_heads=%d", args.n_heads, args.n_kv_heads);
  TROUPE_CHECK(args.head_dim > 0 && args.block_size > 0);
  TROUPE_CHECK(args.kv_head_begin == 0 && args.kv_head_end < 0);
  const std::vector<AttentionTile> tiles = PlanAttentionTiles(args);
  const int64_t n = static_cast<int64_t>(tiles.size());
  // Dealt round-robin: later tiles of a prefill see more keys, so contiguous ranges would
  // leave the first thread idle.
  pool.Run([&](int thread, int num_threads) {
    for (int64_t i = thread; i < n; i += num_threads) internal::AttendTile(args, tiles[i]);
  });
}

#else  // !__AVX512F__

bool HasTiledAttention() { return false; }

namespace internal {
void AttendTile(const PagedAttentionArgs&, const AttentionTile&) {
  TROUPE_CHECK_MSG(false, "tiled attention needs AVX-512; this build has none");
}
void AttendTileLanes(const PagedAttentionArgs&, const AttentionTile&) {
  TROUPE_CHECK_MSG(false, "tiled attention needs AVX-512; this build has none");
}
}  // namespace internal

void PagedAttention(const PagedAttentionArgs& args, ThreadPool& pool) {
  // (token, kv head) items dealt round-robin over the pool, each through the reference.
  const int n_kv = args.n_kv_heads;
  const int64_t q_dim = static_cast<int64_t>(args.n_heads) * args.head_dim;
  const int64_t num_items = args.n_tokens * n_kv;
  pool.Run([&](int thread, int num_threads) {
    for (int64_t item = thread; item < num_items; item += num_threads) {
      const int64_t t = item / n_kv;
      PagedAttentionArgs a = args;
      a.q += t * q_dim;
      a.out += t * q_dim;
      a.token_seq += t;
      a.token_pos += t;
      a.n_tokens = 1;
      a.kv_head_begin = static_cast<int>(item % n_kv);
      a.kv_head_end = a.kv_head_begin + 1;
      ref::PagedAttention(a);
    }
  });
}

#endif  // __AVX512F__

}  // namespace troupe::cpu
