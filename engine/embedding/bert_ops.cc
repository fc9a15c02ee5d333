// BERT CPU operations. The loops are shaped for GCC's auto-vectorizer under plain -O3
// (-march=native in the default build): no reductions across a vector loop except through
// explicit partial-sum arrays (cpu::LaneSum), and exp/erf as branch-free polynomials instead of
// libm calls (cpu::FastExp; clamps as ternaries: std::fmin/fmax keep GCC 12 from vectorizing).
#include "engine/embedding/bert_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/simd.h"

namespace troupe::bert {

using cpu::FastExp;
using cpu::Load16;
using cpu::Store16;
using cpu::Vec16;

float Gelu(float x) {
  // erfc(|z|) = t * poly(t) * exp(-z^2), t = 1 / (1 + p |z|)  (A&S 7.1.26), z = x / sqrt(2).
  const float z = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float erfc = poly * t * FastExp(-z * z);
  // 1 + erf(x / sqrt 2) = 2 - erfc(|z|) for x >= 0, erfc(|z|) for x < 0.
  const float one_plus_erf = x >= 0.0f ? 2.0f - erfc : erfc;
  return 0.5f * x * one_plus_erf;
}

void ExpInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = FastExp(x[i]);
}

void GeluInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = Gelu(x[i]);
}

void LayerNorm(const LayerNormArgs& args) {
  const int64_t dim = args.dim;
  std::vector<float> centered(static_cast<size_t>(dim));
  for (int64_t r = 0; r < args.rows; ++r) {
    float* x = args.x + r * dim;
    // 1) mean; 2) biased variance of the centered row; 3) scale and shift.
    const float mean = cpu::LaneSum<float>(x, dim) / static_cast<float>(dim);
    for (int64_t i = 0; i < dim; ++i) centered[i] = (x[i] - mean) * (x[i] - mean);
    const float var = cpu::LaneSum<float>(centered.data(), dim) / static_cast<float>(dim);
    const float inv_std = 1.0f / std::sqrt(var + args.eps);
    for (int64_t i = 0; i < dim; ++i) {
      x[i] = (x[i] - mean) * inv_std * args.gamma[i] + args.beta[i];
    }
  }
}

// ---- attention ----
namespace {

constexpr int kQueryBlock = 4;  // queries that share each loaded key or value vector
constexpr int kLanes16 = cpu::kVec16Lanes;  // keys (scores) or dims (values) per accumulator

// scores[qi * n_pad + j] = q[qi] . kt[:, j] for qi < NQ, j < n_pad.
template <int NQ>
void BlockScores(const float* const* q, const float* kt, int64_t n_pad, int head_dim,
                 float* scores) {
  for (int64_t j0 = 0; j0 < n_pad; j0 += kLanes16) {
    Vec16 acc[NQ] = {};
    for (int d = 0; d < head_dim; ++d) {
      const Vec16 k = Load16(kt + d * n_pad + j0);
      for (int qi = 0; qi < NQ; ++qi) acc[qi] += q[qi][d] * k;
    }
    for (int qi = 0; qi < NQ; ++qi) Store16(scores + qi * n_pad + j0, acc[qi]);
  }
}

// out[qi][d] = sum_{j < n} p[qi * n_pad + j] * v[j * stride + d] for qi < NQ, d < head_dim.
template <int NQ>
void BlockWeightedValues(const float* p, int64_t n, int64_t n_pad, const float* v, int64_t stride,
                         int head_dim, float* const* out) {
  int d0 = 0;
  for (; d0 + kLanes16 <= head_dim; d0 += kLanes16) {
    Vec16 acc[NQ] = {};
    for (int64_t j = 0; j < n; ++j) {
      const Vec16 vj = Load16(v + j * stride + d0);
      for (int qi = 0; qi < NQ; ++qi) acc[qi] += p[qi * n_pad + j] * vj;
    }
    for (int qi = 0; qi < NQ; ++qi) Store16(out[qi] + d0, acc[qi]);
  }
  for (int qi = 0; qi < NQ; ++qi) {  // head_dim % 16 tail
    for (int d = d0; d < head_dim; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) acc += p[qi * n_pad + j] * v[j * stride + d];
      out[qi][d] = acc;
    }
  }
}

// One block of NQ queries of one head: scores, softmax (into probabilities), weighted values.
template <int NQ>
void QueryBlock(const float* const* q, const float* kt, const float* v, int64_t n, int64_t n_pad,
                int64_t stride, int head_dim, float* scores, float* const* out) {
  BlockScores<NQ>(q, kt, n_pad, head_dim, scores);
  for (int qi = 0; qi < NQ; ++qi) {
    float* row = scores + qi * n_pad;
    const float max_score = *std::max_element(row, row + n);
    for (int64_t j = 0; j < n; ++j) row[j] -= max_score;
    ExpInPlace(row, n);
    const float inv_sum = 1.0f / cpu::LaneSum<float>(row, n);
    for (int64_t j = 0; j < n; ++j) row[j] *= inv_sum;
  }
  BlockWeightedValues<NQ>(scores, n, n_pad, v, stride, head_dim, out);
}

}  // namespace

// Per head, K is copied transposed and pre-scaled into kt[head_dim, n_pad] (keys zero-padded to
// a multiple of kLanes16), so that scores are register-tiled axpys over keys: no horizontal
// reductions. Queries go kQueryBlock at a time, sharing each loaded key and value vector.
void SelfAttention(const SelfAttentionArgs& args) {
  const int64_t n = args.n_tokens;
  const int head_dim = args.head_dim;
  const int64_t hidden = static_cast<int64_t>(args.num_heads) * head_dim;
  const int64_t stride = 3 * hidden;  // floats between tokens in qkv
  const int64_t n_pad = (n + kLanes16 - 1) / kLanes16 * kLanes16;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> kt(static_cast<size_t>(head_dim * n_pad), 0.0f);
  std::vector<float> scores(static_cast<size_t>(kQueryBlock * n_pad));
  for (int h = 0; h < args.num_heads; ++h) {
    const float* q_base = args.qkv + static_cast<int64_t>(h) * head_dim;
    const float* k_base = q_base + hidden;
    const float* v_base = q_base + 2 * hidden;
    for (int64_t j = 0; j < n; ++j) {
      for (int d = 0; d < head_dim; ++d) kt[d * n_pad + j] = k_base[j * stride + d] * scale;
    }
    for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
      const int nq = static_cast<int>(std::min<int64_t>(kQueryBlock, n - i0));
      const float* q[kQueryBlock];
      float* out[kQueryBlock];
      for (int qi = 0; qi < nq; ++qi) {
        q[qi] = q_base + (i0 + qi) * stride;
        out[qi] = args.out + (i0 + qi) * hidden + static_cast<int64_t>(h) * head_dim;
      }
      switch (nq) {
        case 1:
          QueryBlock<1>(q, kt.data(), v_base, n, n_pad, stride, head_dim, scores.data(), out);
          break;
        case 2:
          QueryBlock<2>(q, kt.data(), v_base, n, n_pad, stride, head_dim, scores.data(), out);
          break;
        case 3:
          QueryBlock<3>(q, kt.data(), v_base, n, n_pad, stride, head_dim, scores.data(), out);
          break;
        default:
          QueryBlock<4>(q, kt.data(), v_base, n, n_pad, stride, head_dim, scores.data(), out);
          break;
      }
    }
  }
}

}  // namespace troupe::bert
