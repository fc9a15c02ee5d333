// Online-softmax state and the log-sum-exp merge of partial attention results, shared by the
// CPU code and the CUDA kernels (TROUPE_HD).
//
// A partial result over a set of keys S is (o, lse): o = sum_{j in S} softmax_S(s)_j * v_j (already
// normalised within S) and lse = log sum_{j in S} exp(s_j). Two partials over disjoint key sets
// merge exactly: lse = log(exp(lse_a) + exp(lse_b)), o = w_a * o_a + w_b * o_b with
// w = exp(lse_x - lse). An empty set has lse = -inf and weight 0.
#pragma once

#include <cmath>

#include "kernels/host_device.h"

namespace troupe {

// Running max `m` and running sum `l` = sum exp(s_j - m) of the scores seen so far.
struct SoftmaxState {
  float m = -INFINITY;
  float l = 0.0f;
};

// Folds scores whose maximum is `tile_max` into `state`. Returns the factor by which sums taken
// against the old max (l, and the unnormalised output accumulator) must be multiplied; the
// caller then adds sum exp(s_j - state.m) of the new scores to state.l (and p * v to its
// accumulator).
TROUPE_HD float SoftmaxRescale(SoftmaxState& state, float tile_max) {
  const float m_new = tile_max > state.m ? tile_max : state.m;
  // Nothing seen yet (or only -inf scores): there is no old sum to rescale.
  const float alpha = state.m == -INFINITY ? 0.0f : expf(state.m - m_new);
  state.m = m_new;
  state.l *= alpha;
  return alpha;
}

// log sum exp(s_j) of the scores folded into `state`; -inf when there were none.
TROUPE_HD float SoftmaxLse(const SoftmaxState& state) {
  return state.l > 0.0f ? state.m + logf(state.l) : -INFINITY;
}

// log(exp(a) + exp(b)), exact for -inf operands.
TROUPE_HD float LseAdd(float a, float b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  const float hi = a > b ? a : b;
  const float lo = a > b ? b : a;
  return hi + log1pf(expf(lo - hi));
}

// Weight of a partial with log-sum-exp `lse_part` in a merge whose total is `lse_total`.
TROUPE_HD float LseMergeWeight(float lse_part, float lse_total) {
  return lse_part == -INFINITY ? 0.0f : expf(lse_part - lse_total);
}

}  // namespace troupe
