// TROUPE_HD marks the small index and softmax helpers that both the CPU code and the CUDA kernels
// compile (kernels/paged_index.h, kernels/softmax_merge.h): one definition, unit-tested on the
// CPU, so the error-prone arithmetic is checked where no GPU exists.
#pragma once

#if defined(__CUDACC__)
#define TROUPE_HD __host__ __device__ __forceinline__
#else
#define TROUPE_HD inline
#endif
