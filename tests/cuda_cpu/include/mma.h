// cuda_cpu's stand-in for CUDA's <mma.h>: the nvcuda::wmma subset troupe's kernels use (16x16x16
// tiles, bf16 inputs, f32 accumulators). Every lane holds the whole tile (the real element
// layout is undocumented, so kernels only touch fragments through these functions); each
// *_sync call is a warp barrier, as on the GPU, and mma_sync is computed once per warp.
#pragma once

#include <cuda_bf16.h>

#include <cstring>
#include <type_traits>

#include "tests/cuda_cpu/cuda_cpu.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace internal {
template <typename Use, int M, int N, int K>
struct Shape;
template <int M, int N, int K>
struct Shape<matrix_a, M, N, K> {
  static constexpr int kRows = M, kCols = K;
};
template <int M, int N, int K>
struct Shape<matrix_b, M, N, K> {
  static constexpr int kRows = K, kCols = N;
};
template <int M, int N, int K>
struct Shape<accumulator, M, N, K> {
  static constexpr int kRows = M, kCols = N;
};

inline float ToFloat(float v) { return v; }
inline float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

// The warp's scratch for mma_sync's result (computed by lane 0, copied by every lane).
float* WarpTile(int elements);
}  // namespace internal

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int kRows = internal::Shape<Use, M, N, K>::kRows;
  static constexpr int kCols = internal::Shape<Use, M, N, K>::kCols;
  static constexpr int num_elements = kRows * kCols;
  float x[num_elements];  // row-major [kRows][kCols], whole tile in every lane
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float value) {
  for (float& v : f.x) v = value;
}

// Inputs (matrix_a / matrix_b) with their layout in the type.
template <typename Use, int M, int N, int K, typename T, typename Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>);
  ::troupe::cuda_cpu::WarpBarrier();
  using F = fragment<Use, M, N, K, T, Layout>;
  for (int r = 0; r < F::kRows; ++r) {
    for (int c = 0; c < F::kCols; ++c) {
      const T v = std::is_same_v<Layout, row_major> ? p[r * ldm + c] : p[c * ldm + r];
      f.x[r * F::kCols + c] = internal::ToFloat(v);
    }
  }
}

template <int M, int N, int K, typename T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm,
                       layout_t layout) {
  ::troupe::cuda_cpu::WarpBarrier();
  if (threadIdx.x % 32 == 0) {  // every lane holds the same tile; one writes it
    for (int r = 0; r < M; ++r) {
      for (int c = 0; c < N; ++c) {
        float& dst = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
        dst = f.x[r * N + c];
      }
    }
  }
  ::troupe::cuda_cpu::WarpBarrier();
}

// d = a . b + c, f32 accumulation of exact bf16 products.
template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB, typename TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b,
              const fragment<accumulator, M, N, K, TC>& c) {
  ::troupe::cuda_cpu::WarpBarrier();
  float* tile = internal::WarpTile(M * N);
  if (threadIdx.x % 32 == 0) {
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) {
        float acc = c.x[i * N + j];
        for (int k = 0; k < K; ++k) acc += a.x[i * K + k] * b.x[k * N + j];
        tile[i * N + j] = acc;
      }
    }
  }
  ::troupe::cuda_cpu::WarpBarrier();
  std::memcpy(d.x, tile, sizeof(float) * M * N);
  ::troupe::cuda_cpu::WarpBarrier();  // the tile is rewritten by the warp's next mma_sync
}

}  // namespace nvcuda::wmma
