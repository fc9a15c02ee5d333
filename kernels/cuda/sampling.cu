// Sampling kernels: argmax for greedy rows; for the rest, bisection over float bit patterns for
// the top-k / top-p / min-p threshold over unnormalised probabilities p_i = exp((l_i - max) / T),
// then a block-wide running sum to find the drawn token.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.h"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

__host__ __device__ __forceinline__ uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__host__ __device__ __forceinline__ float Uniform(uint64_t seed, uint64_t counter) {
  const uint64_t bits = SplitMix64(seed ^ SplitMix64(counter));
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // 24 bits: [0, 1)
}

// Folds (value, id) across the warp: the larger value wins, ties go to the lower id.
__device__ __forceinline__ void WarpArgmax(float& value, int& id) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(kFullMask, value, offset);
    const int i = __shfl_xor_sync(kFullMask, id, offset);
    if (v > value || (v == value && i < id)) {
      value = v;
      id = i;
    }
  }
}

// (value, id) argmax over the block with ties to the lower id; every thread gets the winner.
__device__ __forceinline__ int BlockArgmax(float value, int id, float* values, int* ids) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  WarpArgmax(value, id);
  __syncthreads();
  if (lane == 0) {
    values[warp] = value;
    ids[warp] = id;
  }
  __syncthreads();
  value = lane < kWarps ? values[lane] : -INFINITY;
  id = lane < kWarps ? ids[lane] : 0x7fffffff;
  WarpArgmax(value, id);
  return id;
}

// The [begin, end) of this thread's value on the block-wide running sum in thread order; `total`
// gets the sum of all. `scratch` holds >= 32 floats. Neighbouring threads' ranges meet exactly
// (each boundary is one float computed once and shared), so a point lands in at most one.
struct Interval {
  float begin, end, total;
};
__device__ __forceinline__ Interval BlockRunningSum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float other = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  float exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = 0.0f;
  __syncthreads();
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  // Warp w starts at scratch[0] + ... + scratch[w - 1], summed in the same order by every warp;
  // its lane 31 ends at begin + scratch[w], which is the next warp's begin.
  float warp_begin = 0.0f, total = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) warp_begin = total;
    total += scratch[w];
  }
  return Interval{warp_begin + exclusive, warp_begin + inclusive, total};
}

// Largest probability threshold whose kept set {p >= tau} still satisfies `enough(count, mass)`
// (monotone: raising tau only removes tokens), searched over the bit patterns of non-negative
// floats, which order like their values: exact in at most 31 steps, for any gap between the
// best token and the k-th.
template <typename CountMass, typename Enough>
__device__ __forceinline__ float LargestThreshold(float lo, CountMass count_mass, Enough enough) {
  uint32_t lo_bits = __float_as_uint(lo), hi_bits = __float_as_uint(1.0f) + 1;  // lo ok, hi not
  while (hi_bits - lo_bits > 1) {
    const uint32_t mid = lo_bits + (hi_bits - lo_bits) / 2;
    const float2 cm = count_mass(__uint_as_float(mid));
    if (enough(cm.x, cm.y)) lo_bits = mid; else hi_bits = mid;
  }
  return __uint_as_float(lo_bits);
}

__global__ void __launch_bounds__(kThreads) SampleKernel(SampleArgs a) {
  __shared__ float red_f[32];
  __shared__ int red_i[32];
  __shared__ int chosen;

  const int r = blockIdx.x;
  const float* logits = a.logits + int64_t{r} * a.vocab;
  const SampleRowParams p = a.params[r];
  const int v = a.vocab;

  // Max (and argmax). NaN logits never win: they compare false.
  float best = -INFINITY;
  int best_id = v;  // "none yet"
  for (int i = threadIdx.x; i < v; i += kThreads) {
    const float l = logits[i];
    if (l > best) {
      best = l;
      best_id = i;
    }
  }
  const int argmax = BlockArgmax(best, best_id, red_f, red_i);
  if (p.temperature <= 0.0f || p.top_k == 1 || argmax >= v) {
    if (threadIdx.x == 0) a.ids[r] = argmax < v ? argmax : 0;
    return;
  }
  const float max_logit = logits[argmax];
  const float inv_t = 1.0f / p.temperature;
  auto prob = [&](int i) {
    const float l = logits[i];
    return l > -INFINITY ? expf((l - max_logit) * inv_t) : 0.0f;  // NaN -> 0 too
  };
  // (count, mass) of the tokens with prob >= tau.
  auto count_mass = [&](float tau) {
    float c = 0.0f, m = 0.0f;
    for (int i = threadIdx.x; i < v; i += kThreads) {
      const float q = prob(i);
      if (q >= tau && q > 0.0f) {
        c += 1.0f;
        m += q;
      }
    }
    return make_float2(BlockSum(c, red_f), BlockSum(m, red_f));
  };

  // Probabilities are in (0, 1]; the most likely token has 1.
  float tau = 0.0f;
  if (p.top_k > 0 && p.top_k < v) {
    tau = LargestThreshold(0.0f, count_mass, [&](float count, float) { return count >= p.top_k; });
  }
  if (p.top_p < 1.0f) {
    const float target = p.top_p * count_mass(tau).y;
    tau = LargestThreshold(tau, count_mass, [&](float, float mass) { return mass >= target; });
  }
  if (p.min_p > 0.0f && p.min_p > tau) tau = p.min_p;

  // Inverse CDF in id order: each thread owns a contiguous slice of the vocabulary.
  const int per_thread = (v + kThreads - 1) / kThreads;
  const int begin = min(v, threadIdx.x * per_thread), end = min(v, begin + per_thread);
  float local = 0.0f;
  int last_kept = -1;
  for (int i = begin; i < end; ++i) {
    const float q = prob(i);
    if (q >= tau && q > 0.0f) {
      local += q;
      last_kept = i;
    }
  }
  const Interval range = BlockRunningSum(local, red_f);
  if (threadIdx.x == 0) chosen = argmax;  // fallback if rounding leaves u past every slice
  __syncthreads();
  const float u = Uniform(p.seed, p.counter) * range.total;
  if (local > 0.0f && u >= range.begin && u < range.end) {
    float run = range.begin;
    int pick = last_kept;
    for (int i = begin; i < end; ++i) {
      const float q = prob(i);
      if (q >= tau && q > 0.0f) {
        run += q;
        if (u < run) {
          pick = i;
          break;
        }
      }
    }
    chosen = pick;  // the ranges meet exactly: one thread at most gets here
  }
  __syncthreads();
  if (threadIdx.x == 0) a.ids[r] = chosen;
}

}  // namespace

float SampleUniform(uint64_t seed, uint64_t counter) { return Uniform(seed, counter); }

void Sample(const SampleArgs& args, Stream stream) {
  if (args.n_rows == 0) return;
  TROUPE_CHECK(args.vocab > 0);
  SampleKernel<<<args.n_rows, kThreads, 0, stream>>>(args);
  TROUPE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace troupe::cuda
