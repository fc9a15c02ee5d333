// cuda_cpu: runs troupe's CUDA kernels on the CPU so their tests can run on machines without a
// GPU (CI). Every kernel .cu file is rewritten by translate.py (launches `K<<<g, b, s, st>>>(..)`
// become `Launch(K, g, b, s, st)(..)`, `extern __shared__` arrays become the launch's dynamic
// shared memory) and compiled by the host compiler with this header in front.
//
// Execution model: one block at a time; each CUDA thread of the block is a fiber on the calling
// thread. Between two __syncthreads each warp runs alone, as far as it can, before the next one
// starts (ascending warp and lane order in even blocks, descending in odd ones); within a warp,
// each lane runs to its next warp barrier (__syncwarp, a shuffle, an ldmatrix or mma.sync), which releases
// when every lane waits at one. A barrier that part of the warp or block never reaches aborts.
// So a missing barrier shows up as a wrong result (a thread reads what another has not written
// yet, or what another has already overwritten); dynamic shared memory is filled with 0xFF
// (NaN) at each block so reading it unwritten shows up too. runtime.cc also checks copies and
// the order between streams.
//
// What it cannot show: timing, occupancy, bank conflicts, register spills, the memory model of
// a real GPU (all "device" memory is host memory, all work runs when issued), and races that
// both thread orders happen to hide. It is a logic check for the kernels, not a GPU.
#pragma once

// Kernel headers that need a different body here than on a GPU test for it
// (kernels/cuda/tensor_core.cuh).
#define TROUPE_CUDA_CPU_EMULATOR 1

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <vector>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

// The built-in variables, set by the scheduler before it resumes a thread.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

namespace troupe::cuda_cpu {

// Runs `body` once per thread of every block of `grid` (see the execution model above), with
// `dynamic_shared_bytes` of shared memory per block. Serialised: one grid at a time.
void RunGrid(dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body);

void SyncThreads();
int CurrentThread();  // the running thread's linear index in its block
void SyncWarp(unsigned mask = 0xffffffffu);
// The running block's dynamic shared memory (`extern __shared__`).
unsigned char* DynamicShared();

// Shuffles: each lane writes its value to its slot of the warp's exchange buffer, waits at a
// warp barrier, and reads the source lane's slot. Consecutive shuffles alternate between two
// buffers, so one barrier per shuffle is enough.
uint64_t* NextExchangeBuffer();  // 3 x 32 slots of the calling thread's warp
void WarpBarrier();

template <typename T>
T ShuffleFrom(T value, int src_lane, int my_lane) {
  static_assert(sizeof(T) <= sizeof(uint64_t));
  uint64_t* slots = NextExchangeBuffer();
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  slots[my_lane] = bits;
  WarpBarrier();
  bits = slots[src_lane];
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

void RequireFullWarp(unsigned mask, int width);

// cp.async (cuda_pipeline.h's primitives). Copies are deferred: AsyncCopy only records the copy
// in the calling thread's open group, AsyncCommit closes that group, and AsyncWaitPrior(n)
// performs, in issue order, the copies of every committed group but the newest n. Until then
// the destination keeps its old contents, so a kernel that reads shared memory before waiting
// for its copies (or before the barrier that publishes another thread's) reads stale data.
// Copies still uncommitted or unwaited when the thread returns are dropped.
// REQUIRES: size is 4, 8 or 16, zfill <= size, dst and src aligned to size.
void AsyncCopy(void* dst, const void* src, size_t size, size_t zfill);
void AsyncCommit();
void AsyncWaitPrior(size_t prior);

// The tensor-core primitives of kernels/cuda/tensor_core.cuh, with the per-lane layouts written
// there (from the PTX ISA). Both are warp barriers, as .sync.aligned instructions are: the lanes
// exchange their row addresses or fragments through the warp's exchange buffers, then each lane
// computes its own registers. LdMatrixX4 aborts on a row address that is not 16-byte aligned.
void LdMatrixX4(uint32_t (&r)[4], const void* row, bool trans);
// d += A B for A 16x16 (bf16 pairs, row-major), B 16x8 (column-major), f32 accumulation of the
// exact products in k order.
void MmaM16N8K16Bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

template <typename T>
T ShflXor(unsigned mask, T value, int lane_mask, int width = 32) {
  RequireFullWarp(mask, width);
  const int lane = static_cast<int>(threadIdx.x % 32);
  return ShuffleFrom(value, lane ^ lane_mask, lane);
}

template <typename T>
T ShflUp(unsigned mask, T value, unsigned delta, int width = 32) {
  RequireFullWarp(mask, width);
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int src = lane - static_cast<int>(delta);
  const T got = ShuffleFrom(value, src >= 0 ? src : lane, lane);
  return src >= 0 ? got : value;
}

// Device memory an operation may read or write: [begin, end) byte addresses.
struct Range {
  uintptr_t begin, end;
};

// The cudaMalloc blocks that the bytes of `args` point into (every 8-byte-aligned word that is
// an address inside one): what a kernel with these parameters may touch.
std::vector<Range> AllocationsReferencedBy(const void* args, size_t bytes);

// Runs `op` now, or appends it to the graph being captured on `stream` (cudaStreamBeginCapture),
// as CUDA records rather than executes work issued to a capturing stream. Before running it,
// checks stream order (runtime.cc): `touched` must not overlap unfinished work of a stream that
// `stream` does not wait for (the legacy default stream and a non-blocking stream do not wait
// for each other); a violation aborts, naming both.
void Enqueue(cudaStream_t stream, std::vector<Range> touched, std::function<void()> op);

// `kernel<<<grid, block, shared, stream>>>(args...)` is rewritten to
// `Launch(kernel, grid, block, shared, stream)(args...)`; the arguments are copied as the
// kernel's parameters, as a real launch copies them. Runs to completion before returning, unless
// the stream is capturing.
template <typename... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, block;
  size_t shared;
  cudaStream_t stream;
  void operator()(Params... args) const {
    const std::tuple<Params...> params(args...);
    Enqueue(stream, AllocationsReferencedBy(&params, sizeof params),
            [k = kernel, g = grid, b = block, sh = shared, params] {
              RunGrid(g, b, sh, [&] { std::apply(k, params); });
            });
  }
};

template <typename... Params>
Launcher<Params...> Launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared = 0,
                           cudaStream_t stream = nullptr) {
  return Launcher<Params...>{kernel, grid, block, shared, stream};
}

inline float UintAsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t FloatAsUint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

}  // namespace troupe::cuda_cpu

#define __syncthreads() ::troupe::cuda_cpu::SyncThreads()
#define __syncwarp(...) ::troupe::cuda_cpu::SyncWarp(__VA_ARGS__)
#define __shfl_xor_sync ::troupe::cuda_cpu::ShflXor
#define __shfl_up_sync ::troupe::cuda_cpu::ShflUp
#define __uint_as_float ::troupe::cuda_cpu::UintAsFloat
#define __float_as_uint ::troupe::cuda_cpu::FloatAsUint

// The kernel-typed overload cuda_runtime.h declares only for nvcc.
template <typename... Params>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Params...), cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// Device math the host library lacks under these names.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
